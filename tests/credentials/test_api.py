"""The tenant API: secrets are write-only, bad input is a clear 400 and stores nothing."""

from __future__ import annotations

import pytest

from credentials.models import Credential, StoredSecret, TokenRefreshAudit
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/credentials/"


@pytest.fixture
def integration(tenant):
    return IntegrationFactory(tenant=tenant)


def _post(api, integration, type, secret, settings=None, **extra):
    body = {"integration": str(integration.pk), "type": type, "secret": secret, **extra}
    if settings is not None:
        body["settings"] = settings
    return api.post(URL, body, format="json")


def _nothing_stored():
    return not Credential.objects.exists() and not StoredSecret.objects.exists()


class TestCreate:
    def test_create_returns_the_credential_masked(self, api, integration):
        response = _post(
            api, integration, "basic", {"username": "ada-lovelace", "password": "api-secret-pw"}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["type"] == "basic" and body["status"] == "active"
        assert body["secret"] == {"password": "********", "username": "********"}
        # Values distinctive enough that a random UUID in the answer cannot contain them
        # (a 3-letter "ada" once matched the hex of an id).
        assert b"api-secret-pw" not in response.content
        assert b"ada-lovelace" not in response.content
        stored = StoredSecret.objects.get()
        assert "api-secret-pw" not in stored.ciphertext  # encrypted at rest

    def test_list_and_detail_never_show_secret_values(self, api, integration):
        created = _post(api, integration, "api_key", {"api_key": "list-me-not"}).json()
        listing = api.get(URL)
        detail = api.get(f"{URL}{created['id']}/")
        for response in (listing, detail):
            assert response.status_code == 200
            assert b"list-me-not" not in response.content
        assert detail.json()["secret"] == {"api_key": "********"}
        assert detail.json()["settings"] == {"location": "header", "name": "X-API-Key"}

    def test_unknown_type_is_a_clear_400(self, api, integration):
        response = _post(api, integration, "kerberos", {"x": "y"})
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert "unknown credential type 'kerberos'" in body["details"]["type"]
        assert "api_key" in body["details"]["type"]
        assert _nothing_stored()

    def test_missing_and_unknown_fields_are_listed(self, api, integration):
        response = _post(
            api, integration, "oauth1", {"consumer_key": "ck", "extra": "x"}, {"colour": "red"}
        )
        assert response.status_code == 400
        details = response.json()["details"]
        assert details["secret.consumer_secret"] == "this field is required"
        assert (
            details["secret"]
            == "1 unknown field(s) (allowed: consumer_key, consumer_secret, token, token_secret)"
        )
        assert details["settings.colour"].startswith("unknown field")
        assert _nothing_stored()

    @pytest.mark.parametrize(
        "secret, field, message",
        [
            (
                {"certificate": "not a pem", "private_key": "nope"},
                "secret.certificate",
                "must be a PEM certificate",
            ),
            (
                {
                    "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                    "private_key": "x",
                },
                "secret.certificate",
                "is not a valid PEM certificate",
            ),
        ],
    )
    def test_malformed_pem_is_a_clear_400(self, api, integration, secret, field, message):
        response = _post(api, integration, "mtls_certificate", secret)
        assert response.status_code == 400
        assert message in response.json()["details"][field]
        assert _nothing_stored()

    def test_certificate_and_key_must_match(self, api, integration, tls):
        from tests.credentials.tls import make_tls_material

        other = make_tls_material(tls.folder / "other")
        response = _post(
            api,
            integration,
            "mtls_certificate",
            {"certificate": tls.client_cert_pem, "private_key": other.client_key_pem},
        )
        assert response.status_code == 400
        assert "does not match" in response.json()["details"]["secret.private_key"]
        assert tls.client_key_pem.splitlines()[1] not in response.content.decode()
        assert _nothing_stored()

    def test_malformed_jwt_signing_key(self, api, integration):
        response = _post(
            api,
            integration,
            "oauth2_jwt_bearer",
            {"private_key": "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"},
            {"token_url": "https://example.com/token", "issuer": "svc"},
        )
        assert response.status_code == 400
        assert "private key" in response.json()["details"]["secret.private_key"]
        assert _nothing_stored()

    def test_authorization_code_must_use_the_connect_flow(self, api, integration):
        response = _post(
            api, integration, "oauth2_authorization_code", {"access_token": "smuggled"}
        )
        assert response.status_code == 400
        assert "connect flow" in response.json()["details"]["type"]
        assert _nothing_stored()

    def test_secret_must_be_an_object(self, api, integration):
        response = _post(api, integration, "api_key", "just-a-string")
        assert response.status_code == 400
        assert _nothing_stored()

    def test_bad_setting_values(self, api, integration):
        response = _post(
            api, integration, "api_key", {"api_key": "v"}, {"location": "cookie", "name": "x y"}
        )
        assert response.status_code == 400
        assert "must be one of header, query" in response.json()["details"]["settings.location"]
        assert _nothing_stored()

    def test_one_live_credential_per_integration(self, api, integration):
        assert _post(api, integration, "bearer_token", {"token": "one"}).status_code == 201
        second = _post(api, integration, "bearer_token", {"token": "two"})
        assert second.status_code == 409
        assert second.json()["code"] == "conflict"
        assert StoredSecret.objects.count() == 1

    def test_another_tenants_integration_cannot_be_used(self, api, other_tenant):
        theirs = IntegrationFactory(tenant=other_tenant)
        response = _post(api, theirs, "bearer_token", {"token": "x"})
        assert response.status_code == 400
        assert "integration" in response.json()["details"]
        assert _nothing_stored()


class TestLifecycle:
    def test_revoke_deletes_the_secret_and_frees_the_integration(
        self, api, integration, django_capture_on_commit_callbacks
    ):
        created = _post(api, integration, "bearer_token", {"token": "to-revoke"}).json()
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"{URL}{created['id']}/revoke/")
        assert response.status_code == 200
        assert response.json()["status"] == "revoked"
        assert not StoredSecret.objects.exists()
        assert _post(api, integration, "bearer_token", {"token": "new"}).status_code == 201

    def test_refreshing_a_static_credential_is_refused(self, api, integration):
        created = _post(api, integration, "api_key", {"api_key": "static"}).json()
        response = api.post(f"{URL}{created['id']}/refresh/")
        assert response.status_code == 400
        assert response.json()["code"] == "not_refreshable"

    def test_audits_of_a_credential(self, api, integration):
        created = _post(api, integration, "api_key", {"api_key": "a"}).json()
        credential = Credential.objects.get(pk=created["id"])
        TokenRefreshAudit.objects.create(
            credential=credential,
            trigger="schedule",
            outcome="transient_error",
            error_code="http_503",
            correlation_id="corr-1",
        )
        response = api.get(f"{URL}{created['id']}/audits/")
        assert response.status_code == 200
        [row] = response.json()["results"]
        assert (row["trigger"], row["outcome"], row["error_code"], row["correlation_id"]) == (
            "schedule",
            "transient_error",
            "http_503",
            "corr-1",
        )
        listed = api.get("/api/v1/token-refresh-audits/", {"credential": created["id"]})
        assert [r["id"] for r in listed.json()["results"]] == [row["id"]]


def test_connect_cannot_target_another_tenants_integration(api, other_tenant):
    from credentials.models import OAuthState

    theirs = IntegrationFactory(
        tenant=other_tenant,
        provider="generic_rest",
        config={
            "base_url": "http://x",
            "oauth": {"client_id": "c", "authorize_url": "http://a", "token_url": "http://t"},
        },
    )
    response = api.post(
        "/api/v1/credentials/connect/",
        {"integration": str(theirs.pk), "client_secret": "never-stored-secret"},
        format="json",
    )
    assert response.status_code == 400
    assert "integration" in response.json()["details"]
    assert not OAuthState.objects.exists() and not StoredSecret.objects.exists()
