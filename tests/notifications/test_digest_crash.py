"""A real qcluster worker SIGKILLed while it sends a digest: the digest is built once, its one
delivery is sent again by the next worker with the same message id (a receiver that drops
duplicates on ``X-Castiel-Message-Id`` / ``webhook-id`` shows it once), and nothing else is
built or queued twice."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from castiel.events import Kind, Subject, emit
from castiel.queue import enqueue
from notifications import services
from notifications.models import Delivery, Digest, Subscription
from tests.notifications.support import SLACK_PATH, Answer
from tests.support.processes import manage

pytestmark = [pytest.mark.embedded, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {"CASTIEL_NOTIFY_LEASE_SECONDS": "2", "CASTIEL_NOTIFY_MAX_INLINE_WAIT": "0"}


def tick() -> None:
    """What the minute schedule queues: digests due, then the sweeper."""
    enqueue("notifications.tasks.tick", kind="outbound")


def test_a_worker_killed_mid_digest_sends_it_once_more_and_builds_nothing_twice(
    tenant, chat, spawn
):
    channel, _ = services.channel_create(
        tenant=tenant, name="digest", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    )
    subscription = Subscription.objects.create(
        tenant=tenant,
        name="every 5 minutes",
        channel=channel,
        mode="digest",
        digest_every="minutes",
        digest_minutes=5,
        min_severity=10,
    )
    for n in range(3):
        emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=Subject("synctask", str(n), f"task {n}"),
            details={"consecutive_failures": 3},
        )
    # The period (which saw the three incidents open) is over: the next tick builds its digest.
    time.sleep(0.01)
    Subscription.objects.filter(pk=subscription.pk).update(
        digest_from=timezone.now() - timedelta(minutes=5), next_digest_at=timezone.now()
    )
    # Slack takes the message but answers only after the worker is dead.
    chat.script(SLACK_PATH, Answer(delay=8))

    worker = spawn(*manage("qcluster"), env=WORKER_ENV, name="qcluster")
    tick()
    worker.wait_for(lambda: len(chat.received(SLACK_PATH)) == 1, timeout=90, what="the send")
    worker.kill()  # SIGKILL mid-send: no cleanup, no answer recorded

    assert Digest.objects.count() == 1
    sending = Delivery.objects.get()
    assert (sending.kind, sending.status, sending.attempts) == ("digest", "sending", 1)
    subscription.refresh_from_db()
    assert subscription.next_digest_at > timezone.now(), "the clock moved on with the build"

    restarted = spawn(*manage("qcluster"), env=WORKER_ENV, name="qcluster-restarted")
    restarted.wait_for(
        lambda: Delivery.objects.filter(lease_until__lt=timezone.now()).exists(),
        timeout=30,
        what="the dead worker's lease to run out",
    )
    tick()  # no digest is due any more; the sweeper finds the abandoned send
    delivered = Delivery.objects.filter(status="delivered")
    restarted.wait_for(delivered.exists, timeout=90, what="the digest to be delivered")

    assert Digest.objects.count() == 1 and Delivery.objects.count() == 1
    sent = delivered.get()
    assert sent.attempts == 2 and sent.response_status == 200
    first, second = chat.received(SLACK_PATH)
    # The same message, byte for byte, with the same id: a receiver that drops duplicates
    # (the sandbox's chat inbox does) shows one digest.
    assert first.body == second.body
    assert first.headers["x-castiel-message-id"] == second.headers["x-castiel-message-id"]
    assert first.headers["x-castiel-message-id"] == str(sent.message_id)
    assert "3 opened" in first.body.decode()
