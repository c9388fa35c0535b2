"""A whole credentials flow — create every type through the API, use each on real requests,
connect and refresh OAuth2 against the real server, browse the admin, read the API, and hit
the error paths — while capturing logs (caplog, the JSON handler's output, stderr) and every
response. None of the secret values may appear anywhere."""

from __future__ import annotations

import io
import logging
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User

from castiel.observability.logging import formatter_factory
from credentials.clients import client_for
from credentials.models import Credential
from credentials.refresh import credential_refresh
from credentials.secrets_io import read_document
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def _pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@pytest.fixture
def json_log():
    """The structured JSON handler, as configured for stderr, writing to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter_factory("json"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous)


def test_no_secret_value_appears_in_logs_pages_or_responses(
    api,
    client,
    tenant,
    http_server,
    oauth_integration,
    oauth_server,
    connect,
    tls,
    caplog,
    capfd,
    json_log,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwt_key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secrets: list[str] = [
        "leak-api-key-7f3a",
        "leak-query-key-91bc",
        "leak-basic-password-2d",
        "leak-bearer-token-55e",
        "leak-oauth1-consumer-secret",
        "leak-oauth1-token-secret",
        "leak-hmac-secret-0a1",
        "leak-cc-client-secret-aa",
        "leak-cc-access-token-bb",
        "leak-jwt-access-token-cc",
        oauth_server.client_secret,
        *_pem_body_lines(tls.client_key_pem),
        *_pem_body_lines(jwt_key_pem),
    ]
    pages: list[bytes] = []

    @http_server.route("GET", "/probe")
    def probe(_request):
        return 200, {}, {"ok": True}

    @http_server.route("POST", "/token")
    def token(request):
        grant = parse_qs(request.body.decode())["grant_type"][0]
        value = (
            "leak-cc-access-token-bb"
            if grant == "client_credentials"
            else "leak-jwt-access-token-cc"
        )
        return 200, {}, {"access_token": value, "token_type": "bearer", "expires_in": 3600}

    base = http_server.url
    specs = [
        ("api_key", {"api_key": "leak-api-key-7f3a"}, {}),
        ("api_key", {"api_key": "leak-query-key-91bc"}, {"location": "query"}),
        ("basic", {"username": "someone", "password": "leak-basic-password-2d"}, {}),
        ("bearer_token", {"token": "leak-bearer-token-55e"}, {}),
        (
            "oauth1",
            {
                "consumer_key": "ck",
                "consumer_secret": "leak-oauth1-consumer-secret",
                "token": "tk",
                "token_secret": "leak-oauth1-token-secret",
            },
            {},
        ),
        ("hmac_signing_secret", {"secret": "leak-hmac-secret-0a1"}, {}),
        (
            "oauth2_client_credentials",
            {"client_secret": "leak-cc-client-secret-aa"},
            {"token_url": f"{base}/token", "client_id": "cc"},
        ),
        (
            "oauth2_jwt_bearer",
            {"private_key": jwt_key_pem},
            {"token_url": f"{base}/token", "issuer": "svc"},
        ),
    ]
    integrations = []
    for index, (type_, secret, settings) in enumerate(specs):
        integration = IntegrationFactory(tenant=tenant, config={"base_url": base}, name=f"i{index}")
        response = api.post(
            "/api/v1/credentials/",
            {
                "integration": str(integration.pk),
                "type": type_,
                "secret": secret,
                "settings": settings,
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        pages.append(response.content)
        integrations.append(integration)
        client_for(integration).get("/probe")

    # Error paths echo field names, never values.
    for bad in (
        {"type": "api_key", "secret": {"api_key": "x", "leak-api-key-7f3a": "leak-api-key-7f3a"}},
        {
            "type": "mtls_certificate",
            "secret": {"certificate": "leak-bearer-token-55e", "private_key": jwt_key_pem},
        },
        {"type": "nope", "secret": {"token": "leak-bearer-token-55e"}},
    ):
        response = api.post(
            "/api/v1/credentials/", {"integration": str(integrations[0].pk), **bad}, format="json"
        )
        assert response.status_code == 400
        pages.append(response.content)

    # OAuth2: connect (client secret sent once, write-only), use, refresh, audits.
    started, callback = connect(oauth_integration)
    pages += [callback.content, repr(started).encode()]
    oauth_credential = Credential.objects.get(integration=oauth_integration)
    secrets += list(read_document(oauth_credential).values())
    client_for(oauth_integration).get("/api/me/")
    refreshed = api.post(f"/api/v1/credentials/{oauth_credential.pk}/refresh/")
    assert refreshed.json()["outcome"] == "refreshed"
    pages.append(refreshed.content)
    secrets += [v for k, v in read_document(oauth_credential).items() if k != "token_type"]
    oauth_server.revoke(read_document(oauth_credential)["refresh_token"])
    credential_refresh(credential_id=oauth_credential.pk, trigger="manual", force=True)

    for url in ("/api/v1/credentials/", "/api/v1/token-refresh-audits/"):
        pages.append(api.get(url).content)
    for credential in Credential.objects.all():
        pages.append(api.get(f"/api/v1/credentials/{credential.pk}/").content)
        pages.append(api.get(f"/api/v1/credentials/{credential.pk}/audits/").content)

    # Admin pages.
    admin = User.objects.create_superuser("ops", "ops@example.com", "ops-password")
    client.force_login(admin)
    for url in (
        "/admin/credentials/credential/",
        "/admin/credentials/tokenrefreshaudit/",
        "/admin/credentials/oauthstate/",
        "/admin/credentials/credential/connect/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        pages.append(response.content)
    for credential in Credential.objects.all():
        response = client.get(f"/admin/credentials/credential/{credential.pk}/change/")
        assert response.status_code == 200
        pages.append(response.content)

    # Disconnect everything.
    with django_capture_on_commit_callbacks(execute=True):
        for credential in Credential.objects.exclude(status="revoked"):
            pages.append(api.delete(f"/api/v1/credentials/{credential.pk}/").content)

    out, err = capfd.readouterr()
    haystacks = {
        "json log": json_log.getvalue(),
        "caplog": caplog.text,
        "stdout": out,
        "stderr": err,
        "responses and pages": b"\n".join(pages).decode(errors="replace"),
    }
    assert "outbound.request" in haystacks["json log"]  # the capture did capture
    assert "credential.refreshed" in haystacks["json log"]
    secrets = [s for s in secrets if s and len(s) >= 8]
    assert len(secrets) > 20
    leaks = [
        (where, value[:6] + "…")
        for where, text in haystacks.items()
        for value in secrets
        if value in text
    ]
    assert not leaks, f"secret values leaked: {leaks}"
