"""Processing: parse → normalised events → routed actions; retries, dead events, replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.webhooks.factories import make_event
from tests.webhooks.support import octokit_examples
from webhooks import processing, routing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def github_event(registration, event: str, payload: dict, **fields):
    return make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        headers={"X-Github-Event": event, "X-Github-Delivery": "d-1"},
        body=json.dumps(payload).encode(),
        **fields,
    )


def stripe_event(registration, event_type: str, obj: dict):
    body = {"id": "evt_1", "type": event_type, "created": 1700000000, "data": {"object": obj}}
    return make_event(
        registration, status=WebhookEvent.Status.RECEIVED, body=json.dumps(body).encode()
    )


def example(event: str, action: str | None = None) -> dict:
    for payload in octokit_examples(event):
        if action is None or payload.get("action") == action:
            return payload
    raise LookupError(f"no {event}.{action} example")


def test_github_issue_opened_routes_to_upsert_and_rules(make_reg, recorded_actions):
    registration = make_reg(scheme="github")
    payload = example("issues", "opened")
    event = github_event(registration, "issues", payload)
    assert processing.event_process(event_id=event.pk) == "processed"
    names = [name for name, *_ in recorded_actions]
    assert names == ["sync.upsert_record", "push.evaluate_rules"]
    normalised = recorded_actions[0][1]
    assert normalised.provider == "github"
    assert normalised.type == "issues.opened"
    assert normalised.entity_type == "issues"
    # Issues are named as the GitHub adapter keys them, owner/repo#number (see
    # integrations/providers/github/webhooks.py).
    repo = payload["issue"]["repository_url"].split("/repos/", 1)[1]
    assert normalised.external_id == f"{repo}#{payload['issue']['number']}"
    assert normalised.complete and not normalised.deleted
    assert normalised.payload["title"] == payload["issue"]["title"]
    context = recorded_actions[0][2]
    assert context.webhook_event_id == str(event.pk)
    assert context.tenant_id == str(registration.tenant_id)
    event.refresh_from_db()
    assert (event.event_type, event.entity_type) == ("issues.opened", "issues")
    assert event.external_id == normalised.external_id
    assert event.occurred_at is not None
    assert event.attempts == 1 and event.processed_at and event.processing_ms is not None
    assert [a["action"] for a in event.actions] == names
    assert event.actions[0]["result"] == {"seen": normalised.external_id}


def test_github_issue_deleted_and_push(make_reg, recorded_actions):
    registration = make_reg(scheme="github")
    processing.event_process(
        event_id=github_event(registration, "issues", example("issues", "deleted")).pk
    )
    push = example("push")
    processing.event_process(event_id=github_event(registration, "push", push).pk)
    names = [(name, ev.type, ev.entity_type) for name, ev, _ in recorded_actions]
    assert names[0] == ("sync.delete_record", "issues.deleted", "issues")
    assert ("sync.fetch_entity", "push", "repositories") in names
    fetch = next(ev for name, ev, _ in recorded_actions if name == "sync.fetch_entity")
    assert fetch.external_id == str(push["repository"]["id"])
    assert not fetch.complete


def test_unrouted_github_events_are_ignored(make_reg, recorded_actions):
    registration = make_reg(scheme="github")
    event = github_event(registration, "ping", example("ping"))
    assert processing.event_process(event_id=event.pk) == "ignored"
    assert recorded_actions == []
    event.refresh_from_db()
    assert event.event_type == "ping"


def test_stripe_customer_events(make_reg, recorded_actions):
    registration = make_reg(scheme="stripe", secret="whsec_x")
    customer = {"id": "cus_1", "object": "customer", "email": "a@example.com"}
    processing.event_process(event_id=stripe_event(registration, "customer.updated", customer).pk)
    deleted = {"id": "cus_1", "object": "customer", "deleted": True}
    processing.event_process(event_id=stripe_event(registration, "customer.deleted", deleted).pk)
    charge = stripe_event(registration, "charge.succeeded", {"id": "ch_1", "object": "charge"})
    assert processing.event_process(event_id=charge.pk) == "ignored"
    seen = [(name, ev.type, ev.external_id) for name, ev, _ in recorded_actions]
    assert seen == [
        ("sync.upsert_record", "customer.updated", "cus_1"),
        ("push.evaluate_rules", "customer.updated", "cus_1"),
        ("sync.delete_record", "customer.deleted", "cus_1"),
        ("push.evaluate_rules", "customer.deleted", "cus_1"),
    ]
    assert recorded_actions[0][1].occurred_at.year == 2023


def test_generic_parser_with_paths_and_batches(make_reg, recorded_actions):
    registration = make_reg(
        scheme="generic_hmac",
        scheme_config={"header": "X-Sig"},
        parser="generic",
        parser_config={
            "items": "events",
            "type": "kind",
            "entity_type": "=contact",
            "external_id": "record.id",
            "payload": "record",
            "occurred_at": "at",
            "complete": True,
        },
    )
    body = {
        "events": [
            {"kind": "contact.updated", "at": 1700000000000, "record": {"id": 5, "n": "A"}},
            {"kind": "contact.deleted", "at": "2024-01-02T03:04:05Z", "record": {"id": 6}},
        ]
    }
    event = make_event(registration, status="received", body=json.dumps(body).encode())
    assert processing.event_process(event_id=event.pk) == "processed"
    seen = [(name, ev.external_id, ev.entity_type) for name, ev, _ in recorded_actions]
    assert seen == [
        ("sync.upsert_record", "5", "contact"),
        ("push.evaluate_rules", "5", "contact"),
        ("sync.delete_record", "6", "contact"),
        ("push.evaluate_rules", "6", "contact"),
    ]
    assert recorded_actions[0][1].payload == {"id": 5, "n": "A"}
    assert recorded_actions[0][1].occurred_at.year == 2023


def test_event_type_filter_and_route_overrides(make_reg, recorded_actions):
    filtered = make_reg(scheme="github", event_types=["push"])
    event = github_event(filtered, "issues", example("issues", "opened"))
    assert processing.event_process(event_id=event.pk) == "ignored"
    assert recorded_actions == []

    custom_calls = []
    routing.register_action("test.custom", lambda ev, ctx: custom_calls.append(ev.type))
    try:
        routed = make_reg(
            scheme="github", routes={"issues.opened": ["test.custom"], "issues.*": []}
        )
        processing.event_process(
            event_id=github_event(routed, "issues", example("issues", "opened")).pk
        )
        closed = github_event(routed, "issues", example("issues", "reopened"))
        assert processing.event_process(event_id=closed.pk) == "ignored"
    finally:
        routing.unregister_action("test.custom")
    assert custom_calls == ["issues.opened"]
    assert recorded_actions == []


def test_unregistered_action_fails_without_retry(make_reg):
    registration = make_reg(scheme="github", routes={"*": ["nobody.registered.this"]})
    event = github_event(registration, "issues", example("issues", "opened"))
    assert processing.event_process(event_id=event.pk) == "failed"
    event.refresh_from_db()
    assert "ActionNotRegistered" in event.last_error
    assert event.actions[-1] == {
        "action": "nobody.registered.this",
        "status": "error",
        "error": event.last_error,
    }


def test_unparseable_payload_fails_without_retry(make_reg):
    registration = make_reg(scheme="github")
    event = make_event(registration, status="received", headers={}, body=b"not json")
    assert processing.event_process(event_id=event.pk) == "failed"
    event.refresh_from_db()
    assert "ParseError" in event.last_error and event.attempts == 1


@override_settings(CASTIEL_WEBHOOK_MAX_ATTEMPTS=3, CASTIEL_WEBHOOK_RETRY_BASE_SECONDS=10)
def test_retries_with_backoff_then_dead(make_reg, recorded_actions):
    registration = make_reg(scheme="github")
    failures = []

    def flaky(event, context):
        failures.append(1)
        raise ConnectionError("provider down")

    routing.register_action(routing.EVALUATE_RULES, flaky)
    event = github_event(registration, "issues", example("issues", "opened"))

    assert processing.event_process(event_id=event.pk) == "retrying"
    event.refresh_from_db()
    assert event.attempts == 1 and event.next_attempt_at > timezone.now() - timedelta(seconds=1)
    assert "ConnectionError" in event.last_error
    # not due yet: a stray message does nothing
    WebhookEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    assert processing.event_process(event_id=event.pk) is None

    for expected in ("retrying", "failed"):
        WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
        assert processing.event_process(event_id=event.pk) == expected
    event.refresh_from_db()
    assert event.status == "failed" and event.attempts == 3 and event.next_attempt_at is None
    # the upsert that succeeded on attempt 1 was not run again on the retries
    upserts = [name for name, *_ in recorded_actions if name == "sync.upsert_record"]
    assert len(upserts) == 1 and len(failures) == 3


def test_permanent_action_errors_fail_at_once(make_reg, recorded_actions):
    def refuse(event, context):
        raise routing.PermanentActionError("mapping missing")

    routing.register_action(routing.UPSERT_RECORD, refuse)
    event = github_event(make_reg(scheme="github"), "issues", example("issues", "opened"))
    assert processing.event_process(event_id=event.pk) == "failed"


def test_processing_is_idempotent(make_reg, recorded_actions):
    event = github_event(make_reg(scheme="github"), "issues", example("issues", "opened"))
    assert processing.event_process(event_id=event.pk) == "processed"
    assert processing.event_process(event_id=event.pk) is None
    assert len(recorded_actions) == 2


def test_an_expired_lease_is_taken_over(make_reg, recorded_actions):
    event = github_event(make_reg(scheme="github"), "issues", example("issues", "opened"))
    WebhookEvent.objects.filter(pk=event.pk).update(
        status="processing", lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert processing.event_process(event_id=event.pk) is None  # someone holds it
    WebhookEvent.objects.filter(pk=event.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert processing.event_process(event_id=event.pk) == "processed"


def test_replay_processes_again(make_reg, recorded_actions, inline):
    event = github_event(make_reg(scheme="github"), "issues", example("issues", "opened"))
    processing.event_process(event_id=event.pk)
    assert len(recorded_actions) == 2
    with inline():
        processing.event_replay(event=event)
    event.refresh_from_db()
    assert event.status == "processed" and event.replay_count == 1 and event.last_replayed_at
    assert len(recorded_actions) == 4
    assert recorded_actions[-1][2].replay is True


def test_only_accepted_events_can_be_replayed(make_reg):
    rejected = make_event(make_reg(), outcome="rejected", reason="bad_signature", status="")
    with pytest.raises(processing.ReplayRefused):
        processing.event_replay(event=rejected)


def test_replay_is_refused_while_processing(make_reg):
    event = make_event(
        make_reg(), status="processing", lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    with pytest.raises(processing.ReplayRefused):
        processing.event_replay(event=event)


def test_requeue_due_finds_retries_lost_wakeups_and_dead_leases(make_reg, monkeypatch):
    registration = make_reg()
    old = timezone.now() - timedelta(minutes=10)
    due = make_event(registration, status="retrying", next_attempt_at=old)
    lost = make_event(registration, status="received", received_at=old)
    dead = make_event(registration, status="processing", lease_expires_at=old)
    make_event(registration, status="received")  # fresh: its own wake-up is on its way
    make_event(registration, status="retrying", next_attempt_at=timezone.now() + timedelta(1))
    make_event(registration, status="processed", received_at=old)
    queued = []
    monkeypatch.setattr(processing, "event_enqueue", lambda event_id: queued.append(event_id))
    assert processing.events_requeue_due() == 3
    assert set(queued) == {due.pk, lost.pk, dead.pk}


def test_retention_purges_finished_events_only(make_reg):
    registration = make_reg()
    old = timezone.now() - timedelta(days=31)
    gone = [
        make_event(registration, received_at=old),
        make_event(registration, received_at=old, outcome="rejected", status=""),
    ]
    kept = [
        make_event(registration, received_at=old, status="retrying"),
        make_event(registration),
    ]
    assert processing.events_purge(older_than_days=30) == 2
    remaining = set(WebhookEvent.objects.values_list("pk", flat=True))
    assert remaining == {e.pk for e in kept}
    assert not remaining & {e.pk for e in gone}


def test_events_that_name_no_record_route_nowhere(make_reg, recorded_actions):
    registration = make_reg(scheme="slack", secret="x")
    body = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
    event = make_event(registration, status="received", body=json.dumps(body).encode())
    assert processing.event_process(event_id=event.pk) == "ignored"
    assert recorded_actions == []
    event.refresh_from_db()
    assert event.event_type == "app_mention"  # the Slack parser names the inner event


def test_schedules_are_declared():
    from castiel.schedules import declared

    specs = declared()
    assert specs["webhooks-requeue-due"].func == "webhooks.tasks.requeue_due"
    assert specs["webhooks-requeue-due"].kind == "webhooks"
    assert specs["webhooks-purge"].func == "webhooks.tasks.purge_events"
