"""Slack: cursor paging of users and conversations, HTTP 200 ``ok: false`` errors, tier limits
with ``Retry-After``, posting a message as an outbound action, Events API payloads — fed by
the documented fixtures at the HTTP boundary."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from responses import matchers

from syncing.models import DeadLetter, SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from tests.integrations.providers.support import (
    ProviderContract,
    answer,
    deliver,
    fixture,
    make_integration,
    query,
)
from tests.syncing.helpers import make_task, records_of, run_once, sync_to_completion
from tests.syncing.outbound_support import push_all
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded]

API = "https://slack.com/api"
TOKEN = ("bearer_token", {"token": "test-token-not-real"}, {})


class TestSlack(ProviderContract):
    slug = "slack"
    entity = "users"
    credential = TOKEN
    pages = ["users_list_page1", "users_list_page2", "users_list_page3"]
    errors = {
        "error_invalid_auth": ("invalid_credentials", False),
        "error_token_revoked": ("invalid_credentials", False),
        "error_missing_scope": ("missing_scope", False),
        "rate_limited": ("rate_limited", True),
    }
    webhooks = {
        "webhook_url_verification": [],
        "webhook_event_callback_user_change": [
            ("user_change", "users", "U05L0B7C2D3", True, False)
        ],
        "webhook_event_callback_channel_created": [
            ("channel_created", "conversations", "C072Y1A3C5E", False, False)
        ],
    }
    connection = ("POST", f"{API}/auth.test", "auth_test")
    connection_failures = {
        "error_invalid_auth": "invalid_credentials",
        "error_token_revoked": "invalid_credentials",
        "error_missing_scope": "missing_scope",
        "rate_limited": "rate_limited",
    }

    def mock_pages(self, rsps):
        cursor = None
        for name in self.pages:
            extra = {"cursor": cursor} if cursor else {}
            answer(rsps, "GET", f"{API}/users.list", "slack", name, match=query(limit=200, **extra))
            cursor = fixture("slack", name).body["response_metadata"]["next_cursor"]

    def first_page_request(self):
        return "GET", f"{API}/users.list"

    def expected_ids(self):
        return [m["id"] for n in self.pages for m in fixture("slack", n).body["members"]]

    def expected_stored_ids(self):
        # A deactivated user (deleted: true) is a tombstone.
        members = [m for n in self.pages for m in fixture("slack", n).body["members"]]
        return [m["id"] for m in members if not m.get("deleted")]

    # -- Slack specifics ---------------------------------------------------------------

    @pytest.mark.django_db
    def test_ok_false_is_reported_with_the_status_it_stands_for(self, integration, rsps):
        answer(rsps, "GET", f"{API}/users.list", "slack", "error_missing_scope")
        with pytest.raises(Exception) as caught:
            self.adapter(integration).fetch_page(None)
        error = caught.value
        assert (error.status, error.http_status, error.provider_code) == (403, 200, "missing_scope")
        assert error.details["required_scopes"] == ["users:read.email"]

    @pytest.mark.django_db
    def test_conversations_page_with_their_types(self, tenant, rsps):
        integration = make_integration(tenant, "slack", credential=TOKEN)
        url = f"{API}/conversations.list"
        params = {"limit": 200, "types": "public_channel,private_channel"}
        answer(
            rsps,
            "GET",
            url,
            "slack",
            "conversations_list_page1",
            match=query(**params, exclude_archived="false"),
        )
        cursor = fixture("slack", "conversations_list_page1").body["response_metadata"]
        answer(
            rsps,
            "GET",
            url,
            "slack",
            "conversations_list_page2",
            match=query(**params, exclude_archived="false", cursor=cursor["next_cursor"]),
        )
        adapter = self.adapter(integration, "conversations")
        first = adapter.fetch_page(None)
        last = adapter.fetch_page(first.next_cursor)
        assert last.next_cursor is None
        assert len(first.records) + len(last.records) == sum(
            len(fixture("slack", n).body["channels"])
            for n in ("conversations_list_page1", "conversations_list_page2")
        )

    @pytest.mark.django_db(transaction=True)
    def test_a_deactivated_user_is_a_tombstone(self, integration, rsps, enqueued):
        task = make_task(integration, "users", mode="full")
        self.mock_pages(rsps)
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED
        deactivated = [
            m["id"]
            for n in self.pages
            for m in fixture("slack", n).body["members"]
            if m.get("deleted")
        ]
        assert deactivated and not set(deactivated) & set(records_of(task))

    @pytest.mark.django_db(transaction=True)
    def test_retry_after_defers_the_run_and_it_resumes_from_its_checkpoint(
        self, integration, rsps, enqueued, settings, fast_syncs
    ):
        """Tier limit: a 429 with Retry-After: 30 mid-run. Waiting 30 s is longer than the
        worker may wait inline here, so the run is deferred for at least 30 s and the next
        one continues from page 2's checkpoint."""
        settings.CASTIEL_SYNC_MAX_INLINE_WAIT = 1
        task = make_task(integration, "users", mode="full")
        answer(
            rsps, "GET", f"{API}/users.list", "slack", "users_list_page1", match=query(limit=200)
        )
        cursor = fixture("slack", "users_list_page1").body["response_metadata"]["next_cursor"]
        limited = answer(
            rsps,
            "GET",
            f"{API}/users.list",
            "slack",
            "rate_limited",
            match=query(limit=200, cursor=cursor),
        )
        first = run_once(task, enqueued)
        assert first.status == SyncRun.Status.DEFERRED
        task.refresh_from_db()
        assert task.checkpoint["cursor"] == {"cursor": cursor}
        assert (task.next_run_at - first.started_at).total_seconds() >= 30
        rsps.remove(limited)
        # The limiter honours Retry-After too (the integration is blocked for 30 s): instead
        # of waiting, let the 30 s pass for it.
        from ratelimit.services import counters_reset

        counters_reset(integration=integration)
        self.mock_pages(rsps)
        runs = sync_to_completion(task, enqueued)
        assert runs[-1].status == SyncRun.Status.SUCCEEDED
        assert runs[-1].pages == 2  # resumed at page 2

    # -- posting messages (the outbound action) -----------------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_posting_editing_and_deleting_a_message(self, integration, rsps, enqueued, pushes):
        posted = fixture("slack", "chat_post_message").body
        change = local_changes.record_create(
            integration=integration,
            entity_type="messages",
            data={"channel": posted["channel"], "text": posted["message"]["text"]},
        ).change
        post = answer(rsps, "POST", f"{API}/chat.postMessage", "slack", "chat_post_message")
        assert push_all(pushes) == {"succeeded": 1}
        assert json.loads(post.calls[0].request.body) == {
            "channel": posted["channel"],
            "text": posted["message"]["text"],
            # The change's key rides along as message metadata (found again after a lost
            # answer, see the next test).
            "metadata": {
                "event_type": "castiel_message",
                "event_payload": {"castiel_id": change.idempotency_key},
            },
        }
        record = get_store().get(integration.tenant_id, change.record_id)
        key = f"{posted['channel']}:{posted['ts']}"
        assert record.external_id == key
        assert record.data["bot_profile"]["name"] == "Castiel"

        local_changes.record_update(
            tenant_id=integration.tenant_id,
            record_id=record.id,
            data={**record.data, "text": "Sync finished (edited)."},
        )
        update = rsps.add(
            "POST",
            f"{API}/chat.update",
            json={
                "ok": True,
                "channel": posted["channel"],
                "ts": posted["ts"],
                "text": "Sync finished (edited).",
            },
        )
        assert push_all(pushes) == {"succeeded": 1}
        assert json.loads(update.calls[0].request.body) == {
            "channel": posted["channel"],
            "ts": posted["ts"],
            "text": "Sync finished (edited).",
        }

        local_changes.record_delete(tenant_id=integration.tenant_id, record_id=record.id)
        delete = rsps.add(
            "POST",
            f"{API}/chat.delete",
            json={"ok": True, "channel": posted["channel"], "ts": posted["ts"]},
        )
        assert push_all(pushes) == {"succeeded": 1}
        assert json.loads(delete.calls[0].request.body) == {
            "channel": posted["channel"],
            "ts": posted["ts"],
        }

    @pytest.mark.django_db(transaction=True)
    def test_a_post_whose_answer_was_lost_is_found_in_the_channel_not_posted_twice(
        self, integration, rsps, enqueued, pushes, fast_pushes
    ):
        posted = fixture("slack", "chat_post_message").body
        change = local_changes.record_create(
            integration=integration,
            entity_type="messages",
            data={"channel": posted["channel"], "text": posted["message"]["text"]},
        ).change
        post = rsps.add(
            "POST",
            f"{API}/chat.postMessage",
            body=requests.ConnectionError("reset after Slack posted it"),
        )
        ours = {
            **copy.deepcopy(posted["message"]),
            "metadata": {
                "event_type": "castiel_message",
                "event_payload": {"castiel_id": change.idempotency_key},
            },
        }
        someone_elses = {"type": "message", "user": "U0AB", "text": "hi", "ts": "1715336100.000100"}
        history = rsps.add(
            "GET",
            f"{API}/conversations.history",
            json={
                "ok": True,
                "messages": [ours, someone_elses],
                "has_more": False,
                "pin_count": 0,
                "response_metadata": {"next_cursor": ""},
            },
            match=[
                matchers.query_param_matcher(
                    {"channel": posted["channel"], "include_all_metadata": "true"},
                    strict_match=False,
                )
            ],
        )
        assert push_all(pushes) == {"retry": 1, "succeeded": 1}
        assert post.call_count == 1, "posted once"
        assert history.call_count >= 1
        change.refresh_from_db()
        assert change.remote_id == f"{posted['channel']}:{posted['ts']}" and change.replayed

    @pytest.mark.django_db(transaction=True)
    def test_an_unknown_channel_is_a_dead_letter(self, integration, rsps, enqueued, pushes):
        local_changes.record_create(
            integration=integration,
            entity_type="messages",
            data={"channel": "C000NOPE", "text": "hello"},
        )
        answer(rsps, "POST", f"{API}/chat.postMessage", "slack", "error_channel_not_found")
        assert push_all(pushes) == {"dead": 1}
        letter = DeadLetter.objects.get()
        assert letter.error_code == "http_404" and "channel_not_found" in letter.error_message

    @pytest.mark.django_db
    def test_messages_cannot_be_pulled(self, integration):
        from integrations.adapters.base import AdapterConfigError

        with pytest.raises(AdapterConfigError, match="not pulled"):
            self.adapter(integration, "messages").fetch_page(None)

    # -- test connection and events ------------------------------------------------------

    @pytest.mark.django_db
    def test_connection_names_the_workspace_and_missing_scopes(self, integration, rsps):
        from integrations.services import integration_test_connection

        found = fixture("slack", "auth_test")
        rsps.add(
            "POST",
            f"{API}/auth.test",
            body=found.text,
            headers={"x-oauth-scopes": "users:read,channels:read"},
            content_type="application/json",
        )
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (False, "missing_scope")
        assert result.details["team"] == "Acme Widgets"
        assert result.details["missing_scopes"] == ["users:read.email", "groups:read", "chat:write"]

    @pytest.mark.django_db(transaction=True)
    def test_a_user_change_event_updates_the_user(self, integration, rsps, enqueued, no_push_rules):
        task = make_task(integration, "users", mode="full")
        self.mock_pages(rsps)
        run_once(task, enqueued)
        registration = make_registration(
            integration.tenant, scheme="slack", parser="slack", integration=integration
        )
        found = fixture("slack", "webhook_event_callback_user_change")
        event = make_event(
            registration, status=WebhookEvent.Status.RECEIVED, body=found.text.encode()
        )
        assert processing.event_process(event_id=event.pk) == "processed"
        user = found.body["event"]["user"]
        assert records_of(task)[user["id"]]["profile"]["title"] == user["profile"]["title"]

    def test_the_url_verification_handshake_is_not_an_event(self):
        assert deliver("slack", "webhook_url_verification") == []
