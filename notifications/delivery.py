"""Durable delivery: one row per message, sent in order per channel, retried, dead-lettered.

* **Planning** (:func:`create`): delivery rows are written in the transaction that opened,
  reminded or resolved the incident (or built the digest); the channel's worker is woken after
  that commit. A delivery held by quiet hours waits with ``queued_at`` = the end of the quiet
  period and is picked up by the sweeper then.
* **Order**: a channel's deliveries go out in ``(queued_at, id)`` order, one at a time. Only
  the *head* of a channel's queue may be claimed — a conditional ``UPDATE`` that also takes the
  lease — so while the head waits for a retry, the ones behind it wait too (a channel outage
  delivers everything in order when it ends).
* **Attempts**: the claim counts the attempt. A retryable failure (timeout, 429, 5xx, SMTP 4xx)
  backs off with full jitter, never below ``Retry-After`` (``castiel.http.retry``); a wait up
  to ``CASTIEL_NOTIFY_MAX_INLINE_WAIT`` happens in the worker, a longer one returns the channel
  to the sweeper. After ``max_attempts``, once ``CASTIEL_NOTIFY_RETRY_FOR_MINUTES`` have passed
  since the first attempt — or at once for a permanent failure — the delivery is dead, with
  the reason; :func:`replay` queues it again (at the back of the queue).
* **Leases fence results**: a worker records an outcome only while it holds the lease. A worker
  killed mid-send leaves ``sending`` with an expiring lease; the next worker sends it again
  with the same message id (``webhook-id`` for signed webhooks, ``X-Castiel-Message-Id`` for
  email) — at-least-once: a receiver that dedupes on it sees the message once.
* **Channel health**: ``CASTIEL_NOTIFY_CHANNEL_FAILURES`` failed attempts in a row raise the
  platform incident ``notifications.channel_failing``; the next success resolves it. It never
  blocks anything but that channel's own queue.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from castiel import events
from castiel.http.errors import DEFERRED, REFUSED, RETRY, next_step
from castiel.http.retry import RetryPolicy
from castiel.observability.logging import get_logger
from castiel.queue import enqueue_many
from castiel.tenancy.models import active_tenant_ids
from notifications import channels, metrics
from notifications.models import Channel, Delivery

log = get_logger(__name__)

TASK = "notifications.tasks.deliver_channel"
WORK_KIND = "outbound"


# -- planning ------------------------------------------------------------------------------------


def create(
    rows: list[dict],
    *,
    now=None,
) -> list[Delivery]:
    """Write deliveries (``channel``, ``kind``, ``message`` and optional ``subscription``,
    ``incident``, ``digest``, ``hold_until``, ``held_reason``) and wake their channels after
    commit."""
    now = now or timezone.now()
    deliveries = []
    for row in rows:
        channel = row["channel"]
        hold = row.get("hold_until")
        deliveries.append(
            Delivery(
                tenant_id=channel.tenant_id,
                channel=channel,
                subscription=row.get("subscription"),
                incident=row.get("incident"),
                digest=row.get("digest"),
                kind=row["kind"],
                message=row["message"],
                max_attempts=settings.CASTIEL_NOTIFY_MAX_ATTEMPTS,
                queued_at=hold or now,
                next_attempt_at=hold or now,
                held_reason=row.get("held_reason", "") if hold else "",
                created_at=now,
            )
        )
    if not deliveries:
        return []
    Delivery.objects.bulk_create(deliveries)
    wake({d.channel_id for d in deliveries if d.queued_at <= now})
    return deliveries


def wake(channel_ids) -> None:
    ids = sorted(str(c) for c in channel_ids)
    if ids:
        enqueue_many(TASK, [[c] for c in ids], kind=WORK_KIND)


# -- claiming ------------------------------------------------------------------------------------


def _head(channel_id, now):
    return (
        Delivery.objects.filter(
            channel_id=channel_id, status__in=Delivery.PENDING, queued_at__lte=now
        )
        .order_by("queued_at", "id")
        .values("id")[:1]
    )


def claim_head(channel_id, owner: str, *, now=None) -> Delivery | None:
    """Take the head of the channel's queue if it is due (or its sender's lease expired)."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.CASTIEL_NOTIFY_LEASE_SECONDS)
    head = list(_head(channel_id, now))
    if not head:
        return None
    claimed = (
        Delivery.objects.filter(pk=head[0]["id"])
        .filter(
            Q(status=Delivery.Status.QUEUED, next_attempt_at__lte=now)
            | Q(status=Delivery.Status.SENDING, lease_until__lt=now)
        )
        .filter(Q(tenant__isnull=True) | Q(tenant_id__in=active_tenant_ids()))
        .update(
            status=Delivery.Status.SENDING,
            lease_owner=owner,
            lease_until=lease,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("channel").get(pk=head[0]["id"])
    if delivery.first_attempt_at is None:
        Delivery.objects.filter(pk=delivery.pk, first_attempt_at__isnull=True).update(
            first_attempt_at=now
        )
        delivery.first_attempt_at = now
    return delivery


def _fenced(delivery: Delivery, owner: str):
    return Delivery.objects.filter(
        pk=delivery.pk, lease_owner=owner, status=Delivery.Status.SENDING
    )


# -- sending -------------------------------------------------------------------------------------


def work_channel(channel_id, *, budget: float | None = None) -> dict:
    """Send the channel's due deliveries in order until it is empty, waits, or the budget ends."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + (
        settings.CASTIEL_NOTIFY_BATCH_BUDGET_SECONDS if budget is None else budget
    )
    summary = {"delivered": 0, "retry": 0, "dead": 0, "deferred": 0}
    while time.monotonic() < deadline:
        channel = Channel.objects.filter(pk=channel_id).first()
        if channel is None or not channel.enabled:
            break
        delivery = claim_head(channel_id, owner)
        if delivery is None:
            break
        outcome, wait = attempt(delivery, owner)
        summary[outcome] = summary.get(outcome, 0) + 1
        if outcome in ("retry", "deferred"):
            left = deadline - time.monotonic()
            if wait is not None and wait <= min(settings.CASTIEL_NOTIFY_MAX_INLINE_WAIT, left):
                time.sleep(max(0.0, wait))
                continue
            break  # the sweeper comes back when it is due
    return summary


def attempt(delivery: Delivery, owner: str) -> tuple[str, float | None]:
    """Send one claimed delivery and record the result; ``(outcome, seconds until due)``."""
    channel = delivery.channel
    kind = channels.for_type(channel.type)
    started = time.perf_counter()
    try:
        from notifications.services import channel_secrets

        sent = kind.send(channel, delivery, channel_secrets(channel))
    except Exception as exc:
        return _failed(delivery, owner, exc, time.perf_counter() - started)
    duration = time.perf_counter() - started
    now = timezone.now()
    recorded = _fenced(delivery, owner).update(
        status=Delivery.Status.DELIVERED,
        delivered_at=now,
        duration_ms=round(duration * 1000, 1),
        response_status=sent.status,
        response_body=sent.body,
        external_ref=sent.external_ref,
        last_error="",
        lease_owner="",
        lease_until=None,
    )
    metrics.DELIVERIES.labels(channel.type, "delivered").inc()
    metrics.DELIVERY_DURATION.labels(channel.type).observe(duration)
    if recorded:
        _channel_succeeded(channel, now)
    log.info(
        "notifications.delivered",
        delivery=delivery.pk,
        channel=str(channel.pk),
        kind=delivery.kind,
        status=sent.status,
        attempts=delivery.attempts,
        fenced_out=not recorded,
    )
    return "delivered", None


def _failed(delivery: Delivery, owner: str, exc: Exception, duration: float):
    channel = delivery.channel
    step = next_step(exc)
    status = getattr(exc, "status", None)
    body = getattr(exc, "body_excerpt", "") or ""
    reason = f"{exc.__class__.__name__}: {exc}"[:1000]
    now = timezone.now()
    common = {
        "duration_ms": round(duration * 1000, 1),
        "response_status": status,
        "response_body": body[:1000],
        "last_error": reason,
        "lease_owner": "",
        "lease_until": None,
    }
    if step in (DEFERRED, REFUSED):
        # Castiel's own limiter: nothing was sent, so this was no attempt.
        wait = float(getattr(exc, "retry_after", None) or 1.0)
        _fenced(delivery, owner).update(
            status=Delivery.Status.QUEUED,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(seconds=wait),
            **{**common, "last_error": delivery.last_error, "response_status": None},
        )
        metrics.DELIVERIES.labels(channel.type, "deferred").inc()
        return "deferred", wait
    retry_after = getattr(exc, "retry_after", None)
    if step == RETRY and not _given_up(delivery, now):
        wait = RetryPolicy.from_settings("CASTIEL_NOTIFY").delay(
            delivery.attempts, retry_after=retry_after
        )
        _fenced(delivery, owner).update(
            status=Delivery.Status.QUEUED, next_attempt_at=now + timedelta(seconds=wait), **common
        )
        outcome = "retry"
    else:
        why = (
            "permanent failure" if step != RETRY else f"gave up after {delivery.attempts} attempts"
        )
        _fenced(delivery, owner).update(
            status=Delivery.Status.DEAD, **{**common, "last_error": f"{why}: {reason}"[:1000]}
        )
        outcome, wait = "dead", None
    metrics.DELIVERIES.labels(channel.type, outcome).inc()
    log.warning(
        "notifications.delivery_failed",
        delivery=delivery.pk,
        channel=str(channel.pk),
        outcome=outcome,
        status=status,
        error=exc.__class__.__name__,
        attempts=delivery.attempts,
    )
    _channel_failed(channel, reason, now)
    return outcome, wait


def _given_up(delivery: Delivery, now) -> bool:
    """Dead after ``max_attempts`` attempts — but never sooner than
    ``CASTIEL_NOTIFY_RETRY_FOR_MINUTES`` after the first (full jitter may draw short waits: an
    outage shorter than that loses nothing, whatever the draws)."""
    if delivery.attempts < delivery.max_attempts:
        return False
    first = delivery.first_attempt_at or now
    return now - first >= timedelta(minutes=settings.CASTIEL_NOTIFY_RETRY_FOR_MINUTES)


def _channel_succeeded(channel: Channel, now) -> None:
    was_failing = channel.consecutive_failures >= settings.CASTIEL_NOTIFY_CHANNEL_FAILURES
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=0, last_success_at=now)
    if was_failing:
        events.emit(events.Kind.CHANNEL_RECOVERED, subject=_subject(channel))


def _channel_failed(channel: Channel, reason: str, now) -> None:
    Channel.objects.filter(pk=channel.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now, last_error=reason
    )
    failures = channel.consecutive_failures + 1
    if failures >= settings.CASTIEL_NOTIFY_CHANNEL_FAILURES:
        events.emit(
            events.Kind.CHANNEL_FAILING,
            subject=_subject(channel),
            message=f"{failures} failed attempts in a row; last: {reason}"[:500],
            details={"failures": failures, "tenant_id": str(channel.tenant_id or "")},
        )
    channel.consecutive_failures = failures


def _subject(channel: Channel) -> events.Subject:
    return events.Subject("channel", str(channel.pk), channel.name)


# -- the sweeper, replays, tests -----------------------------------------------------------------


def due_channels(*, now=None, limit: int = 1000) -> list[str]:
    """Channels whose queue head can be taken now (lost wake-ups, retries, quiet hours over)."""
    now = now or timezone.now()
    due = Delivery.objects.filter(queued_at__lte=now).filter(
        Q(status=Delivery.Status.QUEUED, next_attempt_at__lte=now)
        | Q(status=Delivery.Status.SENDING, lease_until__lt=now)
    )
    return [str(c) for c in due.values_list("channel_id", flat=True).distinct()[:limit]]


def sweep(*, now=None) -> int:
    channel_ids = due_channels(now=now)
    wake(channel_ids)
    return len(channel_ids)


def replay(delivery: Delivery, *, now=None) -> bool:
    """Queue a dead (or cancelled) delivery again, at the back of its channel's queue, with
    fresh attempts. True when it was replayed."""
    now = now or timezone.now()
    with transaction.atomic():
        replayed = Delivery.objects.filter(
            pk=delivery.pk, status__in=[Delivery.Status.DEAD, Delivery.Status.CANCELLED]
        ).update(
            status=Delivery.Status.QUEUED,
            attempts=0,
            queued_at=now,
            next_attempt_at=now,
            held_reason="",
            replays=F("replays") + 1,
        )
        if replayed:
            wake([delivery.channel_id])
    return bool(replayed)


def send_test(channel: Channel) -> Delivery:
    """Send a test message now (one attempt, ahead of the queue) and return its delivery with
    the channel's answer."""
    from notifications import messages

    now = timezone.now()
    owner = uuid.uuid4().hex
    delivery = Delivery.objects.create(
        tenant_id=channel.tenant_id,
        channel=channel,
        kind=Delivery.Kind.TEST,
        message=messages.for_test(channel),
        status=Delivery.Status.SENDING,
        attempts=1,
        max_attempts=1,
        lease_owner=owner,
        lease_until=now + timedelta(seconds=settings.CASTIEL_NOTIFY_LEASE_SECONDS),
        first_attempt_at=now,
        last_attempt_at=now,
        queued_at=now,
        next_attempt_at=now,
    )
    delivery.channel = channel
    outcome, _wait = attempt(delivery, owner)
    if outcome == "deferred":  # a test is not queued behind the limiter: say so instead
        _fenced_any(delivery).update(
            status=Delivery.Status.DEAD, last_error="the channel's rate limit is used up; try again"
        )
    delivery.refresh_from_db()
    return delivery


def _fenced_any(delivery: Delivery):
    return Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED)
