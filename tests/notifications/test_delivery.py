"""Durable delivery: order per channel, retries with backoff, dead letters, replay, leases,
timeouts, a channel outage, the channel's own incident — against a local fake Slack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from castiel.events import Kind, Subject, emit
from notifications import delivery, services
from notifications.models import Delivery, Incident, Subscription
from tests.notifications.support import SLACK_PATH, WEBHOOK_PATH, Answer

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def slack(tenant, chat):
    channel, _ = services.channel_create(
        tenant=tenant, name="ops", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    )
    Subscription.objects.create(tenant=tenant, name="all", channel=channel, min_severity=10)
    return channel


@pytest.fixture
def fail(tenant, committed):
    """Open incident number ``n`` (a failing sync task ``task-<n>``)."""

    def open_(n: int):
        committed(
            lambda: emit(
                Kind.SYNC_FAILING,
                tenant=tenant,
                subject=Subject("synctask", f"task-{n}", f"task {n}"),
                details={"consecutive_failures": 3},
            )
        )

    return open_


@pytest.fixture
def work(committed):
    """Run the channel's worker (and what its commits trigger: the channel's own incident)."""
    return lambda channel: committed(lambda: delivery.work_channel(channel.pk, budget=10))


def titles(chat):
    return [body["text"] for body in chat.bodies(SLACK_PATH)]


def test_a_ten_minute_outage_loses_nothing_and_delivers_in_order(
    slack, chat, fail, clock, settings, work
):
    """The fake Slack answers 503 for ten minutes; five alerts raised meanwhile all arrive, in
    the order they were raised, once it is back (the worker is driven minute by minute, as the
    sweeper would)."""
    settings.CASTIEL_NOTIFY_RETRY_CAP_SECONDS = 120
    back_at = NOW + timedelta(minutes=10)
    chat.outage = lambda path: Answer(503, {}, "down") if timezone.now() < back_at else None
    for n in range(5):
        fail(n)
        clock.shift(10)
        work(slack)
    for _minute in range(16):
        clock.shift(60)
        if delivery.due_channels():
            work(slack)
    answers = chat.answers(SLACK_PATH)
    expected = [f"Sync task failing: task {n}" for n in range(5)]
    assert [text for text, status in answers if status == 200] == expected
    # While the head waited, nothing behind it was tried.
    assert {text for text, status in answers if status == 503} == {expected[0]}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_an_outage_longer_than_the_attempts_dead_letters_with_the_reason(
    slack, chat, fail, clock, settings, work
):
    settings.CASTIEL_NOTIFY_MAX_ATTEMPTS = 3
    settings.CASTIEL_NOTIFY_RETRY_FOR_MINUTES = 0
    chat.outage = lambda path: Answer(503, {}, "upstream down")
    fail(1)
    fail(2)
    for _ in range(12):
        work(slack)
        clock.shift(120)
    dead = list(Delivery.objects.order_by("id"))
    assert [d.status for d in dead] == ["dead", "dead"]
    assert all(d.attempts == 3 for d in dead)
    assert dead[0].last_error.startswith("gave up after 3 attempts: HttpError")
    assert "HTTP 503" in dead[0].last_error and dead[0].response_body == "upstream down"
    # Replay once Slack is back: at the back of the queue, with fresh attempts.
    chat.outage = None
    assert delivery.replay(dead[1])
    clock.shift(1)
    assert delivery.replay(dead[0])
    assert not delivery.replay(dead[0])  # already queued again
    work(slack)
    assert titles(chat)[-2:] == ["Sync task failing: task 2", "Sync task failing: task 1"]
    replayed = Delivery.objects.get(pk=dead[0].pk)
    assert (replayed.status, replayed.attempts, replayed.replays) == ("delivered", 1, 1)


def test_a_permanent_refusal_is_dead_at_once_and_the_queue_moves_on(slack, chat, fail, clock, work):
    chat.script(SLACK_PATH, Answer(404, {}, "channel_not_found"))
    fail(1)
    fail(2)
    work(slack)
    first, second = Delivery.objects.order_by("id")
    assert first.status == "dead" and first.attempts == 1
    assert (
        first.last_error.startswith("permanent failure")
        and first.response_body == "channel_not_found"
    )
    assert second.status == "delivered"


def test_timeouts_and_5xx_are_retried_with_backoff(slack, chat, fail, clock, settings, work):
    settings.CASTIEL_NOTIFY_TIMEOUT = 0.3
    chat.script(SLACK_PATH, Answer(200, {}, "ok", delay=1.0), Answer(500, {}, "rollup_error"))
    fail(1)
    work(slack)
    row = Delivery.objects.get()
    assert (row.status, row.attempts) == ("queued", 1) and "timed out" in row.last_error
    clock.shift(3600)
    work(slack)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.response_status) == ("queued", 2, 500)
    clock.shift(3600)
    work(slack)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("delivered", 3)


def test_a_sender_that_died_mid_send_is_replaced_when_its_lease_ends(
    tenant, chat, fail, clock, settings, work
):
    """At-least-once, with one message id: the re-send carries the same ``webhook-id``."""
    channel, _ = services.channel_create(
        tenant=tenant, name="app", type="webhook", url=chat.webhook_url
    )
    Subscription.objects.create(tenant=tenant, name="all", channel=channel, min_severity=10)
    fail(1)
    taken = delivery.claim_head(channel.pk, "dead-worker")
    assert taken is not None and delivery.claim_head(channel.pk, "other") is None
    assert work(channel)["delivered"] == 0  # the lease still holds
    clock.shift(settings.CASTIEL_NOTIFY_LEASE_SECONDS + 1)
    assert work(channel)["delivered"] == 1
    row = Delivery.objects.get()
    assert row.attempts == 2
    (request,) = chat.received(WEBHOOK_PATH)
    assert request.headers["webhook-id"] == f"msg_{row.message_id.hex}"
    # The dead worker's late result changes nothing: it no longer holds the lease.
    assert delivery._fenced(row, "dead-worker").update(status="dead") == 0


def test_the_channel_rate_limit_defers_without_spending_an_attempt(tenant, chat, fail, clock, work):
    channel, _ = services.channel_create(
        tenant=tenant, name="ops", type="slack", url=chat.slack_url
    )
    Subscription.objects.create(tenant=tenant, name="all", channel=channel, min_severity=10)
    fail(1)
    fail(2)
    assert work(channel) == {"delivered": 1, "retry": 0, "dead": 0, "deferred": 1}
    second = Delivery.objects.order_by("id").last()
    assert (second.status, second.attempts) == ("queued", 0)
    clock.shift(1.1)
    assert work(channel)["delivered"] == 1


def test_a_failing_channel_raises_a_platform_incident_and_its_recovery_resolves_it(
    slack, chat, fail, clock, settings, work
):
    settings.CASTIEL_NOTIFY_CHANNEL_FAILURES = 2
    chat.outage = lambda path: Answer(503, {}, "down")
    fail(1)
    for _ in range(2):
        work(slack)
        clock.shift(600)
    incident = Incident.objects.get(kind=str(Kind.CHANNEL_FAILING))
    assert incident.tenant_id is None and incident.subject_id == str(slack.pk)
    assert incident.state == "open"
    # The failing channel is not sent its own failure.
    assert not Delivery.objects.filter(incident=incident).exists()
    chat.outage = None
    work(slack)
    incident.refresh_from_db()
    assert incident.state == "resolved"


def test_quiet_hours_hold_alerts_until_they_end_and_critical_goes_through(
    tenant, chat, committed, clock, work
):
    channel, _ = services.channel_create(
        tenant=tenant, name="ops", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    )
    from datetime import time

    Subscription.objects.create(
        tenant=tenant,
        name="night",
        channel=channel,
        min_severity=10,
        timezone="Europe/Berlin",
        quiet_start=time(8, 0),
        quiet_end=time(12, 0),
    )  # 09:00 UTC is 10:00 in Berlin: quiet until 11:00 UTC
    committed(
        lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=("synctask", "1", "a"),
            details={"consecutive_failures": 3},
        )
    )
    committed(
        lambda: emit(
            Kind.CREDENTIAL_REAUTH_REQUIRED, tenant=tenant, subject=("integration", "i1", "CRM")
        )
    )
    work(channel)
    assert titles(chat) == ["Credential needs re-authorisation: CRM"]
    held = Delivery.objects.get(status="queued")
    assert held.queued_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert held.held_reason == "quiet hours of night"
    clock.move_to(datetime(2026, 3, 2, 11, 0, 1, tzinfo=UTC))
    assert delivery.due_channels() == [str(channel.pk)]
    work(channel)
    assert titles(chat)[-1] == "Sync task failing: a"


def test_an_alert_resolved_during_quiet_hours_is_never_sent(tenant, chat, committed, clock, work):
    from datetime import time

    channel, _ = services.channel_create(
        tenant=tenant, name="ops", type="slack", url=chat.slack_url
    )
    Subscription.objects.create(
        tenant=tenant,
        name="night",
        channel=channel,
        min_severity=10,
        quiet_start=time(8, 0),
        quiet_end=time(10, 0),
    )
    subject = ("synctask", "1", "a")
    committed(
        lambda: emit(
            Kind.SYNC_FAILING, tenant=tenant, subject=subject, details={"consecutive_failures": 3}
        )
    )
    committed(lambda: emit(Kind.SYNC_RECOVERED, tenant=tenant, subject=subject))
    assert list(Delivery.objects.values_list("status", flat=True)) == ["cancelled"]
    clock.move_to(datetime(2026, 3, 2, 10, 1, tzinfo=UTC))
    work(channel)
    assert chat.received(SLACK_PATH) == []


def test_the_sweeper_wakes_channels_whose_head_is_due(
    slack, chat, fail, clock, run_tasks_inline, monkeypatch
):
    with monkeypatch.context() as lost:
        lost.setattr(delivery, "wake", lambda channel_ids: None)  # the wake-up is lost
        fail(1)
    assert chat.received(SLACK_PATH) == []
    assert delivery.sweep() == 1
    run_tasks_inline()
    assert titles(chat) == ["Sync task failing: task 1"]


def test_a_test_notification_shows_the_channels_answer(slack, chat):
    chat.script(SLACK_PATH, Answer(403, {}, "action_prohibited"))
    failed = delivery.send_test(slack)
    assert (failed.status, failed.response_status, failed.response_body) == (
        "dead",
        403,
        "action_prohibited",
    )
    ok = delivery.send_test(slack)
    assert (ok.status, ok.response_status, ok.response_body) == ("delivered", 200, "ok")
    assert titles(chat)[-1] == "Test notification from Castiel to ops"
