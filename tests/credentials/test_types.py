"""Each of the nine credential types applies itself to a real request received by a local
server (tests/support/httpserver.py), sent through ``client_for(integration)``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1.rfc5849 import signature as oauth1_signature

from castiel.http.errors import TransportError
from credentials.clients import client_for
from credentials.models import Credential, TokenRefreshAudit
from credentials.oauth import TokenResult
from credentials.services import credential_create, credential_store_oauth_tokens
from tests.factories import IntegrationFactory
from tests.support.httpserver import running_server

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def ok(_request):
    return 200, {}, {"ok": True}


@pytest.fixture
def server(http_server):
    http_server.route("GET", "/probe")(ok)
    http_server.route("POST", "/probe")(ok)
    return http_server


@pytest.fixture
def integration(tenant, server):
    return IntegrationFactory(tenant=tenant, config={"base_url": server.url})


def _create(integration, type, secret, settings=None, **kwargs):
    return credential_create(
        integration=integration, type=type, secret=secret, settings=settings or {}, **kwargs
    )


def test_api_key_in_a_header(integration, server):
    _create(integration, "api_key", {"api_key": "k-123"}, {"name": "X-Api-Token"})
    client_for(integration).get("/probe")
    assert server.requests[-1].headers["x-api-token"] == "k-123"


def test_api_key_in_a_header_with_a_prefix(integration, server):
    _create(
        integration,
        "api_key",
        {"api_key": "k-456"},
        {"name": "Authorization", "prefix": "Token "},
    )
    client_for(integration).get("/probe")
    assert server.requests[-1].headers["authorization"] == "Token k-456"


def test_api_key_in_the_query_string_keeps_other_parameters(integration, server):
    _create(integration, "api_key", {"api_key": "k-789"}, {"location": "query", "name": "key"})
    client_for(integration).get("/probe", params={"page": "2"})
    assert server.requests[-1].query == {"key": ["k-789"], "page": ["2"]}


def test_basic(integration, server):
    _create(integration, "basic", {"username": "ada", "password": "pa:ss wörd"})
    client_for(integration).get("/probe")
    header = server.requests[-1].headers["authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == "ada:pa:ss wörd"


def test_bearer_token(integration, server):
    _create(integration, "bearer_token", {"token": "bt-1"})
    client_for(integration).get("/probe")
    assert server.requests[-1].headers["authorization"] == "Bearer bt-1"


def test_oauth2_authorization_code_applies_the_stored_access_token(integration, server):
    credential_store_oauth_tokens(
        integration=integration,
        result=TokenResult(
            secret={"access_token": "ac-1", "refresh_token": "rt-1", "token_type": "bearer"},
            expires_at=None,
            refresh_expires_at=None,
            scopes=None,
            refresh_token_rotated=False,
        ),
        requested_scopes=["read"],
    )
    client_for(integration).get("/probe")
    assert server.requests[-1].headers["authorization"] == "Bearer ac-1"


@pytest.mark.filterwarnings("ignore:use sign_hmac_sha1_with_client:DeprecationWarning")
def test_oauth1_hmac_sha1_signature_verifies_with_an_independent_implementation(
    integration, server
):
    secret = {
        "consumer_key": "ck",
        "consumer_secret": "cs-secret",
        "token": "tk",
        "token_secret": "ts-secret",
    }
    _create(integration, "oauth1", secret, {"realm": "castiel"})
    client_for(integration).post("/probe", params={"b": "2", "a": "1"}, data={"field": "x y"})
    received = server.requests[-1]
    header = received.headers["authorization"]
    assert header.startswith('OAuth realm="castiel"')
    params = oauth1_signature.collect_parameters(
        uri_query="a=1&b=2",
        body=received.body.decode(),
        headers={"Authorization": header},
        exclude_oauth_signature=True,
    )
    base = oauth1_signature.signature_base_string(
        "POST",
        oauth1_signature.base_string_uri(f"{server.url}/probe"),
        oauth1_signature.normalize_parameters(params),
    )
    expected = oauth1_signature.sign_hmac_sha1(base, "cs-secret", "ts-secret")
    sent = dict(
        oauth1_signature.collect_parameters(
            headers={"Authorization": header}, exclude_oauth_signature=False
        )
    )
    assert sent["oauth_signature_method"] == "HMAC-SHA1"
    assert sent["oauth_consumer_key"] == "ck" and sent["oauth_token"] == "tk"
    assert sent["oauth_signature"] == expected


def test_hmac_signing_secret_with_timestamp(integration, server):
    _create(
        integration,
        "hmac_signing_secret",
        {"secret": "whsec-test"},
        {"header": "X-Hub-Signature-256", "prefix": "sha256=", "timestamp_header": "X-Timestamp"},
    )
    client_for(integration).post("/probe", json={"event": "ping"})
    received = server.requests[-1]
    timestamp = received.headers["x-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(
        b"whsec-test", timestamp.encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    assert received.headers["x-hub-signature-256"] == f"sha256={expected}"


def test_hmac_signing_secret_base64_of_the_raw_body(integration, server):
    _create(
        integration,
        "hmac_signing_secret",
        {"secret": "shopify-like"},
        {"header": "X-Signature", "encoding": "base64"},
    )
    client_for(integration).post("/probe", data=b"raw-bytes")
    received = server.requests[-1]
    expected = base64.b64encode(
        hmac.new(b"shopify-like", b"raw-bytes", hashlib.sha256).digest()
    ).decode()
    assert received.headers["x-signature"] == expected


def test_mtls_certificate_is_presented_to_a_server_that_requires_it(tenant, tls):
    with running_server(tls.server_context(require_client_cert=True)) as server:
        server.route("GET", "/probe")(ok)
        integration = IntegrationFactory(tenant=tenant, config={"base_url": server.url})
        credential = _create(
            integration,
            "mtls_certificate",
            {
                "certificate": tls.client_cert_pem,
                "private_key": tls.client_key_pem,
                "ca_certificate": tls.ca_pem,
            },
        )
        assert credential.expires_at is not None  # the certificate's notAfter
        client = client_for(integration)
        assert client.get("/probe").json() == {"ok": True}
        subject = dict(item[0] for item in server.requests[-1].client_cert["subject"])
        assert subject["commonName"] == tls.client_cn
        _cert_path, key_path = client.auth.send_kwargs["cert"]
        if hasattr(os, "memfd_create"):
            # Key material lives in anonymous memory files, never on a filesystem.
            assert key_path.startswith("/proc/self/fd/")
        # Without the certificate the same server refuses the handshake.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/probe", verify=tls.ca_path, timeout=5)


def test_mtls_without_client_certificate_fails_through_castiel_too(tenant, tls):
    with running_server(tls.server_context(require_client_cert=True)) as server:
        server.route("GET", "/probe")(ok)
        integration = IntegrationFactory(tenant=tenant, config={"base_url": server.url})
        _create(integration, "bearer_token", {"token": "not-a-cert"})
        with pytest.raises(TransportError):
            client_for(integration).get("/probe")


def test_oauth2_client_credentials_fetches_once_and_applies_the_token(integration, server):
    token_requests = []

    @server.route("POST", "/token")
    def token(request):
        token_requests.append(request)
        return 200, {}, {"access_token": "cc-access", "token_type": "bearer", "expires_in": 3600}

    _create(
        integration,
        "oauth2_client_credentials",
        {"client_secret": "cc-secret"},
        {"token_url": f"{server.url}/token", "client_id": "cc-id", "audience": "api://x"},
        scopes=["read", "write"],
    )
    client = client_for(integration)
    client.get("/probe")
    client.get("/probe")
    assert len(token_requests) == 1
    form = parse_qs(token_requests[0].body.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["read write"] and form["audience"] == ["api://x"]
    auth = token_requests[0].headers["authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == "cc-id:cc-secret"
    assert server.requests[-1].headers["authorization"] == "Bearer cc-access"
    credential = Credential.objects.get()
    assert credential.expires_at is not None and "access_token" in credential.secret_fields
    assert TokenRefreshAudit.objects.get().outcome == "refreshed"


def test_oauth2_jwt_bearer_signs_an_assertion_the_server_can_verify(integration, server):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token_url = f"{server.url}/token"
    claims_seen = []

    @server.route("POST", "/token")
    def token(request):
        form = parse_qs(request.body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        claims = jwt.decode(
            form["assertion"][0], public_pem, algorithms=["RS256"], audience=token_url
        )
        claims_seen.append((claims, jwt.get_unverified_header(form["assertion"][0])))
        return 200, {}, {"access_token": "jwt-access", "token_type": "Bearer", "expires_in": 600}

    _create(
        integration,
        "oauth2_jwt_bearer",
        {"private_key": private_pem},
        {
            "token_url": token_url,
            "issuer": "svc@example.iam",
            "subject": "user@example.com",
            "key_id": "k1",
        },
    )
    client_for(integration).get("/probe")
    claims, header = claims_seen[0]
    assert claims["iss"] == "svc@example.iam" and claims["sub"] == "user@example.com"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert header["kid"] == "k1" and header["alg"] == "RS256"
    assert server.requests[-1].headers["authorization"] == "Bearer jwt-access"
