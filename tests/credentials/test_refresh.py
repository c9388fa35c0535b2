"""Refresh rules against a token endpoint shaped like RFC 6749 responses (local HTTP server):
omitted refresh tokens, refresh-token expiry, transient failures and backoff, permanent
errors, the schedule's selection and its configuration check."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from castiel.schedules import declared
from credentials.maintenance import due_for_refresh, mark_expiring, refresh_due
from credentials.models import Credential, TokenRefreshAudit
from credentials.oauth import TokenResult
from credentials.refresh import credential_refresh
from credentials.secrets_io import read_document
from credentials.services import credential_store_oauth_tokens, oauth_client_secret_set
from integrations.models import Integration
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def fast_backoff(settings):
    settings.CASTIEL_TOKEN_REFRESH_BACKOFF_SECONDS = 0.01


@pytest.fixture
def provider(http_server):
    """A token endpoint whose answers the test scripts, one per request."""
    answers: list[tuple[int, dict, object]] = []
    seen: list[dict] = []

    @http_server.route("POST", "/token")
    def token(request):
        seen.append({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
        return answers.pop(0) if answers else (500, {}, {"error": "server_error"})

    http_server.answers = answers
    http_server.seen = seen
    return http_server


@pytest.fixture
def credential(tenant, provider):
    integration = IntegrationFactory(
        tenant=tenant,
        provider="generic_rest",
        config={
            "base_url": provider.url,
            "oauth": {
                "client_id": "cid",
                "authorize_url": f"{provider.url}/authorize",
                "token_url": f"{provider.url}/token",
            },
        },
    )
    oauth_client_secret_set(integration=integration, client_secret="client-secret")
    return credential_store_oauth_tokens(
        integration=integration,
        result=TokenResult(
            secret={"access_token": "at-0", "refresh_token": "rt-0", "token_type": "Bearer"},
            expires_at=timezone.now() + timedelta(minutes=30),
            refresh_expires_at=None,
            scopes=["read"],
            refresh_token_rotated=False,
        ),
        requested_scopes=["read"],
    )


def _refresh(credential, **kwargs):
    kwargs.setdefault("trigger", "manual")
    kwargs.setdefault("force", True)
    return credential_refresh(credential_id=credential.pk, **kwargs)


def test_a_provider_omitting_the_refresh_token_keeps_the_old_one(credential, provider):
    provider.answers.append((200, {}, {"access_token": "at-1", "expires_in": 3600}))
    assert _refresh(credential).outcome == "refreshed"
    document = read_document(credential)
    assert document["access_token"] == "at-1" and document["refresh_token"] == "rt-0"
    assert provider.seen[0] == {"grant_type": "refresh_token", "refresh_token": "rt-0"}


def test_refresh_token_expiry_is_tracked_and_flags_the_credential(credential, provider):
    provider.answers.append(
        (
            200,
            {},
            {
                "access_token": "at-1",
                "refresh_token": "rt-1",
                "expires_in": 3600,
                "refresh_token_expires_in": 3 * 86400,
            },
        )
    )
    _refresh(credential)
    credential.refresh_from_db()
    remaining = credential.refresh_expires_at - timezone.now()
    assert timedelta(days=2, hours=23) < remaining <= timedelta(days=3)
    assert mark_expiring() == 1  # inside the 14-day warning window
    credential.refresh_from_db()
    assert credential.status == "expiring"
    assert "refresh token ends" in credential.status_reason


def test_transient_failures_are_retried_in_process(credential, provider):
    provider.answers.extend(
        [
            (503, {}, "unavailable"),
            (429, {"Retry-After": "0"}, {"error": "slow down"}),
            (200, {}, {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 60}),
        ]
    )
    result = _refresh(credential)
    assert result.outcome == "refreshed"
    audit = TokenRefreshAudit.objects.get()
    assert audit.attempts == 3 and audit.outcome == "refreshed"
    assert len(provider.seen) == 3


def test_transient_failure_past_the_attempts_backs_off_without_losing_the_credential(
    credential, provider
):
    provider.answers.extend([(502, {}, "bad gateway")] * 3)
    result = _refresh(credential)
    assert (result.outcome, result.error_code) == ("transient_error", "http_502")
    credential.refresh_from_db()
    assert credential.status == "active"  # the current token may still work
    assert credential.failure_count == 1
    assert credential.next_retry_at > timezone.now()
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    assert not due_for_refresh().exists()  # the schedule waits for next_retry_at
    Credential.objects.filter(pk=credential.pk).update(next_retry_at=timezone.now())
    assert due_for_refresh().exists()


def test_a_failing_on_demand_refresh_is_tried_once_per_client_not_per_request(
    credential, provider, settings
):
    settings.CASTIEL_TOKEN_REFRESH_ATTEMPTS = 1
    provider.route("GET", "/probe")(lambda r: (200, {}, {"ok": True}))
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    from credentials.clients import client_for

    client = client_for(Integration.objects.get(pk=credential.integration_id))
    client.get("/probe")  # the token endpoint answers 500: the old token is tried
    client.get("/probe")
    assert len(provider.seen) == 1
    assert TokenRefreshAudit.objects.get().outcome == "transient_error"
    assert provider.requests[-1].headers["authorization"] == "Bearer at-0"


def test_unreachable_token_endpoint_is_transient(credential, settings):
    settings.CASTIEL_TOKEN_REFRESH_ATTEMPTS = 1
    Integration.objects.filter(pk=credential.integration_id).update(
        config={
            "base_url": "http://127.0.0.1:9/",
            "oauth": {
                "client_id": "cid",
                "authorize_url": "http://127.0.0.1:9/a",
                "token_url": "http://127.0.0.1:9/token",
            },
        }
    )
    credential = Credential.objects.get(pk=credential.pk)
    result = _refresh(credential)
    assert (result.outcome, result.error_code) == ("transient_error", "TransportError")


def test_permanent_oauth_errors_mark_the_credential_but_do_not_pause_for_reauth(
    credential, provider
):
    provider.answers.append((401, {}, {"error": "invalid_client", "error_description": "bad"}))
    result = _refresh(credential)
    assert (result.outcome, result.error_code) == ("error", "invalid_client")
    credential.refresh_from_db()
    assert credential.status == "error"
    assert "invalid_client" in credential.status_reason
    assert Integration.objects.get(pk=credential.integration_id).status == "active"
    assert len(provider.seen) == 1  # not retried


def test_invalid_grant_pauses_the_integration(credential, provider):
    provider.answers.append((400, {}, {"error": "invalid_grant"}))
    result = _refresh(credential)
    assert result.outcome == "reauth_required"
    integration = Integration.objects.get(pk=credential.integration_id)
    assert integration.status == "reauth_required" and not integration.is_operational


def test_a_second_on_demand_refresh_finds_the_fresh_token_and_skips(credential, provider):
    provider.answers.append(
        (200, {}, {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})
    )
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    first = credential_refresh(credential_id=credential.pk, trigger="on_demand")
    second = credential_refresh(credential_id=credential.pk, trigger="on_demand")
    assert (first.outcome, second.outcome) == ("refreshed", "skipped")
    assert len(provider.seen) == 1
    assert TokenRefreshAudit.objects.filter(outcome="skipped").count() == 1


class TestSchedule:
    def test_due_selection_uses_the_look_ahead_and_half_life(self, credential, settings):
        settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES = 60
        now = timezone.now()
        cases = [
            (now + timedelta(minutes=90), None, False),  # beyond the look-ahead
            (now + timedelta(minutes=30), None, True),
            (now + timedelta(minutes=30), now + timedelta(minutes=5), False),  # half-life
            (now - timedelta(minutes=1), now + timedelta(minutes=5), True),  # expired
        ]
        for expires_at, renew_after, due in cases:
            Credential.objects.filter(pk=credential.pk).update(
                expires_at=expires_at, renew_after=renew_after
            )
            assert due_for_refresh().exists() is due, (expires_at, renew_after)

    def test_reauth_required_and_revoked_are_not_due(self, credential):
        Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
        for status in ("reauth_required", "revoked"):
            Credential.objects.filter(pk=credential.pk).update(status=status)
            assert not due_for_refresh().exists()

    def test_a_deactivated_tenant_or_disabled_integration_is_not_due(self, credential):
        from castiel.tenancy.models import Tenant

        Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
        assert due_for_refresh().exists()
        Tenant.objects.filter(pk=credential.tenant_id).update(is_active=False)
        assert not due_for_refresh().exists()
        Tenant.objects.filter(pk=credential.tenant_id).update(is_active=True)
        Integration.objects.filter(pk=credential.integration_id).update(enabled=False)
        assert not due_for_refresh().exists()

    def test_the_job_refreshes_what_is_due(self, credential, provider):
        provider.answers.append(
            (200, {}, {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600})
        )
        Credential.objects.filter(pk=credential.pk).update(
            expires_at=timezone.now() + timedelta(minutes=5), renew_after=None
        )
        summary = refresh_due(concurrency=1)
        assert summary["due"] == 1 and summary["refreshed"] == 1
        assert TokenRefreshAudit.objects.get().trigger == "schedule"
        assert refresh_due(concurrency=1)["due"] == 0

    def test_static_credentials_near_expiry_become_expiring(self, tenant):
        from tests.credentials.factories import make_api_key_credential

        static = make_api_key_credential(IntegrationFactory(tenant=tenant))
        Credential.objects.filter(pk=static.pk).update(
            expires_at=timezone.now() + timedelta(days=2)
        )
        assert mark_expiring() == 1
        static.refresh_from_db()
        assert static.status == "expiring" and "expires at" in static.status_reason

    def test_the_schedule_is_declared_with_the_configured_interval(self):
        spec = declared()["credentials.refresh_due"]
        assert spec.func == "credentials.tasks.refresh_due_credentials"
        assert spec.minutes == 10 and spec.kind == "maintenance"

    @pytest.mark.parametrize(
        "interval, lookahead, ok", [(10, 60, True), (10, 10, False), (30, 20, False)]
    )
    def test_look_ahead_must_exceed_the_interval(self, settings, interval, lookahead, ok):
        settings.CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES = interval
        settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES = lookahead
        ids = [error.id for error in run_checks()]
        assert ("credentials.E001" not in ids) is ok


def test_no_token_of_a_deactivated_tenant_is_refreshed_on_demand(credential, provider):
    """Whatever asks (a worker after a 401, an operator's "refresh now"), a deactivated
    tenant's credentials are not used to call the provider."""
    from castiel.tenancy.models import Tenant

    Tenant.objects.filter(pk=credential.tenant_id).update(is_active=False)
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    for kwargs in ({"trigger": "on_demand", "force": False}, {"trigger": "manual", "force": True}):
        result = credential_refresh(credential_id=credential.pk, **kwargs)
        assert result.outcome == "skipped" and "deactivated" in result.message
    Integration.objects.filter(pk=credential.integration_id).update(enabled=False)
    Tenant.objects.filter(pk=credential.tenant_id).update(is_active=True)
    result = _refresh(credential)
    assert result.outcome == "skipped" and "disabled" in result.message
    assert provider.seen == []  # the token endpoint never heard of it
