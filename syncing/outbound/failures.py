"""A failed push attempt: put back untouched, retried, or a dead letter.

Failures are classified once (:func:`castiel.http.errors.next_step`): the rate limiter's
refusal (a delete while throttled) or deferral puts the change back, untouched, until
``retry_after`` — never lost, never counted as an attempt; retryable failures back off by the
push's :class:`~castiel.http.retry.RetryPolicy` (full jitter, never below ``Retry-After``, up
to the task's attempt limit) — short waits inside the batch, longer ones by releasing the
change; anything else becomes a dead letter at once.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from castiel.db.leases import LeaseLost
from castiel.http.errors import DEFERRED, REFUSED, RETRY, OutboundError, next_step
from castiel.http.retry import RetryPolicy
from castiel.observability.logging import get_logger
from integrations.adapters.base import AdapterError
from syncing import metrics
from syncing.errors import error_code, error_message
from syncing.models import OutboundChange
from syncing.outbound.context import PushContext
from syncing.outbound.deadletters import dead_letter_create
from syncing.outbound.fencing import BatchLease
from syncing.records.stores.base import StaleRecordError

log = get_logger(__name__)
Status = OutboundChange.Status


class RemoteMissing(Exception):
    """The record to update does not exist at the provider (like an HTTP 404): permanent."""

    retryable = False
    code = "remote_missing"
    status = 404


def is_expected(exc: BaseException) -> bool:
    """Failures that are part of talking to providers (not bugs worth a traceback)."""
    return isinstance(exc, OutboundError | AdapterError | RemoteMissing | StaleRecordError)


def failed(
    lease: BatchLease,
    change: OutboundChange,
    exc: BaseException,
    duration: float,
    *,
    ctx: PushContext | None,
    started: float,
    inline: bool = True,
    due_at: datetime | None = None,
) -> tuple[str, float | None]:
    """Record the failed attempt; (outcome, seconds until an inline retry or None).

    ``ctx``: the change's push context if it could be built; ``started``: the batch's start
    (an inline retry must fit its time budget); ``inline=False``: a retry always goes back to
    the outbox (a change of a provider batch is retried in a later batch, under its key);
    ``due_at``: when a retry comes due, instead of a backoff drawn for this change (a failed
    provider batch's changes share one due time, written as is to each of them, so they come
    due — and go out — together again: a delay per change, measured as each is recorded, would
    scatter them by the time recording takes)."""
    # A local write raced ours on the record (stores without a conditional UPDATE):
    # trying again is all it takes.
    step = RETRY if isinstance(exc, StaleRecordError) else next_step(exc)
    provider = change.integration.provider
    code, message = error_code(exc), error_message(exc)
    retry_after = getattr(exc, "retry_after", None)
    metrics.PUSH_DURATION.labels(provider, change.operation).observe(duration)
    try:
        if step in (REFUSED, DEFERRED):
            # The limiter stopped it before anything was sent: not an attempt, not lost.
            delay = retry_after if retry_after is not None else 1.0
            metrics.PUSH_RETRIES.labels(provider, step).inc()
            entry = lease.log(change, step, code=code, message=message[:300], delay=delay)
            lease.release(change, delay=delay, reason=str(exc), attempted=False, log=entry)
            return step, None
        # Without a context (a broken configuration) there is no second attempt.
        policy = ctx.retries if ctx else RetryPolicy(max_attempts=1)
        if step == RETRY and not policy.exhausted(change.attempts):
            if due_at is None:
                delay = policy.delay(change.attempts, retry_after=retry_after)
            else:
                delay = max(0.0, (due_at - timezone.now()).total_seconds())
            metrics.PUSH_RETRIES.labels(provider, code).inc()
            entry = lease.log(
                change,
                "retry",
                code=code,
                status=getattr(exc, "status", None),
                message=message[:300],
                delay=round(delay, 3),
                retry_after=retry_after,
            )
            log.warning(
                "outbound.retry", change_id=str(change.pk), code=code, delay=round(delay, 3)
            )
            left = settings.CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS - (time.monotonic() - started)
            if inline and delay <= min(settings.CASTIEL_OUTBOUND_MAX_INLINE_WAIT, left):
                lease.write(
                    change,
                    error_code=code,
                    error_summary=message,
                    status_reason=f"retrying in {delay:.1f}s",
                    attempt_log=entry,
                )
                return "retry", delay
            lease.release(
                change, delay=delay, reason=message, attempted=True, log=entry, due_at=due_at
            )
            return "retry", None
        reason = f"gave up after {change.attempts} attempts" if step == RETRY else ""
        dead(lease, change, exc, reason=reason, adapter=ctx.adapter if ctx else None)
        metrics.PUSHES.labels(provider, change.operation, "dead").inc()
        return "dead", None
    except LeaseLost:
        return "lease_lost", None


def dead(lease: BatchLease, change, exc: BaseException, *, reason: str, adapter=None) -> None:
    """The change becomes a dead letter (its row and the letter in one transaction)."""
    code, message = error_code(exc), error_message(exc)
    if reason:
        message = f"{reason}: {message}"
    entry = lease.log(
        change, "dead", code=code, status=getattr(exc, "status", None), message=message[:300]
    )
    with transaction.atomic():
        lease.write(
            change,
            status=Status.DEAD,
            lease_owner="",
            lease_expires_at=None,
            finished_at=timezone.now(),
            error_code=code,
            error_summary=message[:5000],
            status_reason="dead letter: " + message[:500],
            attempt_log=entry,
        )
        dead_letter_create(change=change, exc=exc, adapter=adapter, reason=reason)
    metrics.DEAD_LETTERS.labels(change.integration.provider).inc()
    log.warning("outbound.dead_letter", change_id=str(change.pk), code=code)
