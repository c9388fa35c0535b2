"""webhooks_replay and credentials_refresh: success and one-line error paths."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from credentials.models import Credential, TokenRefreshAudit
from credentials.oauth import TokenResult
from credentials.services import (
    credential_create,
    credential_store_oauth_tokens,
    oauth_client_secret_set,
)
from tests.factories import IntegrationFactory
from tests.webhooks.factories import make_event, make_registration
from webhooks import routing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def recorded(monkeypatch):
    """A sync action that records what it was asked to do (the routing is real)."""
    seen = []
    monkeypatch.setitem(routing._actions, routing.FETCH_ENTITY, lambda e, c: seen.append(e) or {})
    monkeypatch.setitem(routing._actions, routing.EVALUATE_RULES, lambda e, c: {"outcome": "x"})
    return seen


def github_event(registration, n: int, **fields) -> WebhookEvent:
    body = {"ref": "refs/heads/main", "repository": {"id": n, "full_name": f"o/r{n}"}}
    return make_event(
        registration,
        headers={"X-Github-Event": "push", "X-Github-Delivery": f"d-{n}"},
        body=json.dumps(body).encode(),
        **fields,
    )


def test_webhooks_replay_by_status_dry_run_then_inline(tenant, command, fails, recorded):
    registration = make_registration(tenant, integration=IntegrationFactory(tenant=tenant))
    failed = [github_event(registration, n, status="failed", last_error="boom") for n in (1, 2)]
    github_event(registration, 3)  # processed: not selected
    rejected = make_event(registration, outcome="duplicate", status="")

    listed = command("webhooks_replay", "--status", "failed", "--dry-run")
    assert "would replay 2 events (dry run)" in listed.out
    assert all(str(e.pk) in listed.out for e in failed)
    assert WebhookEvent.objects.filter(status="failed").count() == 2

    ran = command("webhooks_replay", "--status", "failed", "--tenant", tenant.slug, "--inline")
    assert ran.out.strip() == "replayed 2 events (2 processed)"
    assert "2/2 events" in ran.err
    assert [e.external_id for e in recorded] == ["1", "2"]
    for event in failed:
        event.refresh_from_db()
        assert (event.status, event.replay_count, event.last_error) == ("processed", 1, "")

    ran = command("webhooks_replay", str(failed[0].pk))
    assert ran.out.strip() == "replayed 1 events"
    failed[0].refresh_from_db()
    assert failed[0].status == "received", "queued for a worker"

    assert fails("webhooks_replay") == (
        "give event ids or a filter (--status, --registration, --since …)"
    )
    assert fails("webhooks_replay", str(rejected.pk)) == (
        f"only accepted events can be replayed; not accepted: {rejected.pk}"
    )
    assert "is not a webhook event id" in fails("webhooks_replay", "12")
    assert fails("webhooks_replay", "--since", "yesterday") == (
        "--since 'yesterday' is not an ISO 8601 time"
    )
    assert command("webhooks_replay", "--event-type", "nothing.like.this").out.strip() == (
        "no webhook events to replay"
    )


@pytest.fixture
def token_endpoint(http_server):
    """An RFC 6749 token endpoint whose answers the test scripts, one per request."""
    answers = []

    @http_server.route("POST", "/token")
    def token(request):
        http_server.seen.append(parse_qs(request.body.decode()))
        return answers.pop(0) if answers else (500, {}, {"error": "server_error"})

    http_server.seen = []
    http_server.answers = answers
    return http_server


def oauth_credential(tenant, endpoint, *, name: str, expires_in: timedelta) -> Credential:
    integration = IntegrationFactory(
        tenant=tenant,
        name=name,
        config={
            "base_url": endpoint.url,
            "oauth": {
                "client_id": "cid",
                "authorize_url": f"{endpoint.url}/authorize",
                "token_url": f"{endpoint.url}/token",
            },
        },
    )
    oauth_client_secret_set(integration=integration, client_secret="client-secret")
    return credential_store_oauth_tokens(
        integration=integration,
        result=TokenResult(
            secret={"access_token": "at-0", "refresh_token": f"rt-{name}", "token_type": "Bearer"},
            expires_at=timezone.now() + expires_in,
            refresh_expires_at=None,
            scopes=["read"],
            refresh_token_rotated=False,
        ),
        requested_scopes=["read"],
    )


def fresh_token(n: int):
    return (200, {}, {"access_token": f"at-{n}", "token_type": "Bearer", "expires_in": 3600})


def test_credentials_refresh_one_and_all_due(tenant, command, fails, token_endpoint, settings):
    settings.CASTIEL_TOKEN_REFRESH_BACKOFF_SECONDS = 0.01
    due = oauth_credential(tenant, token_endpoint, name="due", expires_in=timedelta(minutes=-1))
    later = oauth_credential(tenant, token_endpoint, name="later", expires_in=timedelta(days=1))

    token_endpoint.answers.append(fresh_token(1))
    ran = command("credentials_refresh", str(later.pk))
    assert ran.out.startswith(f"credential {later.pk}: refreshed, expires ")
    audit = TokenRefreshAudit.objects.get(credential=later)
    assert (audit.trigger, audit.outcome) == ("manual", "refreshed")

    token_endpoint.answers.append(fresh_token(2))
    ran = command("credentials_refresh", "--due")
    assert ran.out.strip() == "1 credentials due: 1 refreshed"
    assert "1/1 credentials" in ran.err
    assert [s["refresh_token"] for s in token_endpoint.seen] == [["rt-later"], ["rt-due"]]
    due.refresh_from_db()
    assert due.expires_at > timezone.now() + timedelta(minutes=50)

    token_endpoint.answers.append((400, {}, {"error": "invalid_grant"}))
    message = fails("credentials_refresh", str(due.pk))
    assert message.startswith(f"credential {due.pk}: reauth_required")
    assert "at-" not in message and "rt-" not in message


def test_credentials_refresh_argument_errors(tenant, fails):
    static = credential_create(
        integration=IntegrationFactory(tenant=tenant),
        type="api_key",
        secret={"api_key": "k-123"},
    )
    assert fails("credentials_refresh") == "give a credential id or --due"
    assert fails("credentials_refresh", str(static.pk)) == (
        "api_key credentials have no token to refresh"
    )
    assert fails("credentials_refresh", "00000000-0000-0000-0000-000000000000") == (
        "no credential 00000000-0000-0000-0000-000000000000"
    )
