"""OAuth2 against a real authorization server (django-oauth-toolkit 3.4, tests/credentials/
oauth_server): connect with PKCE through Castiel's endpoints, refresh with rotation, on-demand
refresh during a real outbound call, revocation → reauth_required and a paused integration."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from castiel.http.errors import HttpError
from credentials.clients import client_for
from credentials.errors import CredentialUnavailableError
from credentials.models import Credential, OAuthState, StoredSecret, TokenRefreshAudit
from credentials.refresh import credential_refresh
from credentials.secrets_io import read_document
from integrations.models import Integration
from tests.credentials.helpers import fp
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def _tokens(credential) -> dict:
    return read_document(Credential.objects.get(pk=credential.pk))


class TestConnect:
    def test_full_authorization_code_flow_with_pkce_stores_a_working_credential(
        self, connect, oauth_integration, oauth_server
    ):
        started, callback = connect(oauth_integration)
        query = parse_qs(urlsplit(started["authorize_url"]).query)
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
        assert query["client_id"] == [oauth_server.client_id]
        assert query["redirect_uri"] == ["http://testserver/oauth/callback/"]
        assert callback.status_code == 200
        assert b"is connected" in callback.content

        credential = Credential.objects.get(integration=oauth_integration)
        assert credential.type == "oauth2_authorization_code"
        assert credential.status == "active"
        assert credential.scopes == ["read"]
        assert credential.expires_at > timezone.now() + timedelta(seconds=30)
        assert credential.secret_fields == ["access_token", "refresh_token", "token_type"]
        # The token works against the provider's API, through Castiel's outbound client.
        response = client_for(oauth_integration).get("/api/me/")
        assert response.json() == {"user": "alice", "scope": "read"}

    def test_state_is_single_use(self, connect, oauth_integration, client):
        _started, callback = connect(oauth_integration)
        assert callback.status_code == 200
        replay = client.get(callback.request["PATH_INFO"] + "?" + callback.request["QUERY_STRING"])
        assert replay.status_code == 400
        assert b"already used" in replay.content
        assert Credential.objects.filter(integration=oauth_integration).count() == 1

    def test_expired_state_is_refused_and_nothing_is_stored(
        self, api, client, oauth_integration, oauth_server
    ):
        started = api.post(
            "/api/v1/credentials/connect/",
            {"integration": str(oauth_integration.pk), "client_secret": oauth_server.client_secret},
            format="json",
        ).json()
        OAuthState.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        consent = oauth_server.browser().get(started["authorize_url"], allow_redirects=False)
        callback = client.get("/oauth/callback/?" + urlsplit(consent.headers["Location"]).query)
        assert callback.status_code == 400
        assert b"expired" in callback.content
        assert not Credential.objects.exists()

    @pytest.mark.parametrize(
        "query, code, text",
        [
            ("", "state_missing", b"no state"),
            ("state=forged&code=abc", "state_invalid", b"Unknown authorization state"),
        ],
    )
    def test_bad_state_is_refused_clearly(self, client, query, code, text):
        response = client.get(f"/oauth/callback/?{query}")
        assert response.status_code == 400
        assert f'data-code="{code}"'.encode() in response.content
        assert text in response.content
        assert not Credential.objects.exists()

    def test_denied_consent_stores_nothing(self, api, client, oauth_integration, oauth_server):
        started = api.post(
            "/api/v1/credentials/connect/",
            {"integration": str(oauth_integration.pk)},
            format="json",
        ).json()
        state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
        response = client.get(
            f"/oauth/callback/?error=access_denied&error_description=User+said+no&state={state}"
        )
        assert response.status_code == 400
        assert b"did not grant access" in response.content and b"User said no" in response.content
        assert not Credential.objects.exists()

    def test_provider_refusing_the_code_stores_nothing(self, api, client, oauth_integration):
        started = api.post(
            "/api/v1/credentials/connect/",
            {"integration": str(oauth_integration.pk), "client_secret": "wrong-secret"},
            format="json",
        ).json()
        state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
        response = client.get(f"/oauth/callback/?code=not-a-real-code&state={state}")
        assert response.status_code == 400
        assert b"refused the authorization code" in response.content
        assert not Credential.objects.exists()
        assert not StoredSecret.objects.filter(name__startswith="cred-").exists()

    def test_pkce_can_be_switched_off_per_provider_config(self, api, oauth_integration):
        oauth_integration.config["oauth"]["pkce"] = False
        oauth_integration.save()
        started = api.post(
            "/api/v1/credentials/connect/",
            {"integration": str(oauth_integration.pk)},
            format="json",
        ).json()
        query = parse_qs(urlsplit(started["authorize_url"]).query)
        assert "code_challenge" not in query and "state" in query
        assert OAuthState.objects.get().pkce is False

    def test_connect_needs_oauth_configuration(self, api, tenant):
        bare = IntegrationFactory(
            tenant=tenant, provider="generic_rest", config={"base_url": "http://x", "oauth": {}}
        )
        response = api.post(
            "/api/v1/credentials/connect/", {"integration": str(bare.pk)}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "oauth_not_configured"
        assert "client_id" in response.json()["message"]

    def test_connect_refuses_providers_without_oauth(self, api, tenant, monkeypatch):
        import dataclasses

        from integrations.providers import registry

        api_key_only = dataclasses.replace(
            registry.get("generic_rest"), slug="api_key_only", auth_types=("api_key",)
        )
        monkeypatch.setitem(registry._providers, "api_key_only", api_key_only)
        rest = IntegrationFactory(tenant=tenant, provider="api_key_only")
        response = api.post(
            "/api/v1/credentials/connect/", {"integration": str(rest.pk)}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "oauth_not_supported"

    def test_reconnecting_after_reauth_reuses_the_credential_and_resumes(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        oauth_server.revoke(_tokens(credential)["refresh_token"])
        credential_refresh(credential_id=credential.pk, trigger="manual", force=True)
        oauth_integration.refresh_from_db()
        assert oauth_integration.status == "reauth_required"
        _started, callback = connect(oauth_integration, client_secret=False)
        assert callback.status_code == 200
        credential.refresh_from_db()
        oauth_integration.refresh_from_db()
        assert credential.status == "active" and Credential.objects.count() == 1
        assert oauth_integration.status == "active" and oauth_integration.is_operational
        assert client_for(oauth_integration).get("/api/me/").status_code == 200


class TestRefresh:
    def test_refresh_rotates_tokens_and_stores_a_new_version_first(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        before = _tokens(credential)
        oauth_server.reset_stats()
        result = credential_refresh(credential_id=credential.pk, trigger="manual", force=True)
        assert result.outcome == "refreshed"
        after = _tokens(credential)
        assert fp(after["refresh_token"]) != fp(before["refresh_token"])  # rotated
        assert fp(after["access_token"]) != fp(before["access_token"])
        assert oauth_server.refreshes() == {"refresh_token:200:": 1}
        versions = StoredSecret.objects.filter(name=credential.secret_name).count()
        assert versions == 2
        credential.refresh_from_db()
        assert credential.secret_version == "2"
        # The rotated-away refresh token is dead at the server (reuse protection): only the
        # stored one works, so storing it before use is what keeps the connection alive.
        assert client_for(oauth_integration).get("/api/me/").status_code == 200
        audit = TokenRefreshAudit.objects.get(credential=credential)
        assert (audit.trigger, audit.outcome, audit.message) == (
            "manual",
            "refreshed",
            "refresh token rotated",
        )
        assert audit.correlation_id and audit.duration_ms > 0

    def test_expired_access_token_is_refreshed_on_demand_during_an_outbound_call(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        old = _tokens(credential)
        oauth_server.expire(old["access_token"])  # expired at the provider …
        Credential.objects.filter(pk=credential.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)  # … and Castiel knows it
        )
        response = client_for(oauth_integration).get("/api/me/")
        assert response.status_code == 200
        assert fp(_tokens(credential)["access_token"]) != fp(old["access_token"])
        audit = TokenRefreshAudit.objects.get()
        assert (audit.trigger, audit.outcome) == ("on_demand", "refreshed")

    def test_a_401_triggers_one_refresh_and_one_retry(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        old = _tokens(credential)
        oauth_server.expire(old["access_token"])  # Castiel still believes it is valid
        oauth_server.reset_stats()
        response = client_for(oauth_integration).get("/api/me/")
        assert response.status_code == 200
        assert oauth_server.refreshes() == {"refresh_token:200:": 1}
        assert TokenRefreshAudit.objects.get().outcome == "refreshed"

    def test_revocation_leads_to_reauth_required_and_pauses_the_integration(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        oauth_server.revoke(_tokens(credential)["refresh_token"])
        # Half its lifetime is over: the schedule picks it up.
        Credential.objects.filter(pk=credential.pk).update(
            renew_after=timezone.now() - timedelta(seconds=1)
        )
        from credentials.maintenance import refresh_due

        summary = refresh_due(concurrency=1)
        assert summary["reauth_required"] == 1
        credential.refresh_from_db()
        assert credential.status == "reauth_required"
        assert "connect the integration again" in credential.status_reason
        integration = Integration.objects.get(pk=oauth_integration.pk)
        assert integration.status == "reauth_required"
        assert not integration.is_operational  # the sync scheduler and push worker pause
        assert "re-authorisation" in integration.status_reason
        audit = TokenRefreshAudit.objects.get()
        assert (audit.trigger, audit.outcome, audit.error_code) == (
            "schedule",
            "reauth_required",
            "invalid_grant",
        )
        with pytest.raises(CredentialUnavailableError, match="reauth_required"):
            client_for(integration).get("/api/me/")
        # The schedule leaves it alone until someone reconnects.
        assert refresh_due(concurrency=1)["due"] == 0

    def test_revoked_tokens_give_401_and_no_retry_loop(
        self, connect, oauth_integration, oauth_server
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        oauth_server.revoke(_tokens(credential)["refresh_token"])
        oauth_server.reset_stats()
        with pytest.raises(HttpError) as info:
            client_for(oauth_integration).get("/api/me/")
        assert info.value.status == 401
        assert oauth_server.refreshes() == {"refresh_token:400:invalid_grant": 1}
        assert Credential.objects.get().status == "reauth_required"

    def test_disconnect_revokes_at_the_provider_and_deletes_the_secret(
        self, api, connect, oauth_integration, oauth_server, django_capture_on_commit_callbacks
    ):
        connect(oauth_integration)
        credential = Credential.objects.get()
        tokens = _tokens(credential)
        with django_capture_on_commit_callbacks(execute=True):
            response = api.delete(f"/api/v1/credentials/{credential.pk}/")
        assert response.status_code == 204
        credential.refresh_from_db()
        assert credential.status == "revoked"
        assert not StoredSecret.objects.filter(name=credential.secret_name).exists()
        import requests

        probe = requests.get(
            f"{oauth_server.url}/api/me/",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert probe.status_code == 401
        assert client_for(oauth_integration).auth is None
