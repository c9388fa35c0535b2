"""The outbound reaper: changes whose worker stopped go back to the outbox, or, after the
last attempt the task allows, to the dead letters.

A change's lease expires when the worker holding it was killed, crashed, or never got its
batch message:

* ``queued`` (the message was never taken): nothing was attempted; back to pending.
* ``running`` (taken, so the attempt was counted when it was taken): the attempt is logged
  as ``lost`` and counted in ``lost_attempts``; from then on the change is *suspect* and
  is dispatched alone (:func:`syncing.outbound.dispatch.dispatch_suspects`), so a change
  that kills its worker no longer takes the rest of a batch down with it — their attempts
  would run out too. If it was the last one the task allows (``push_max_attempts``, else
  ``CASTIEL_OUTBOUND_MAX_ATTEMPTS``), the change becomes a dead letter (``worker_lost``,
  retryable, so it can be replayed once the cause is fixed): a change that makes its worker
  crash — a poison change — would otherwise be taken, take its whole batch down, be reaped
  and be taken again, forever. Otherwise it is pushed again with the same idempotency key,
  so a change the dead worker had already sent is answered from the provider's idempotency
  store, not applied twice.

Every transition re-checks the expiry (and, for running changes, the holder) in its UPDATE:
a worker that renewed a moment ago keeps its change.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from castiel.db.leases import fenced_update
from castiel.observability.logging import get_logger
from syncing import metrics
from syncing.models import OutboundChange, SyncTask
from syncing.outbound.deadletters import dead_letter_create

log = get_logger(__name__)

Status = OutboundChange.Status
PUSHED_AGAIN = (
    "the worker holding this change stopped (crashed or killed); "
    "it is pushed again with the same idempotency key"
)
NEVER_TAKEN = "its batch message was not taken before the lease expired; it waits for a new batch"


class WorkerLost(Exception):
    """The worker pushing a change stopped before it recorded a result."""

    code = "worker_lost"
    retryable = True


def reap_expired(now=None) -> int:
    """Return changes whose lease expired to pending (or to the dead letters); their count."""
    now = now or timezone.now()
    reaped = OutboundChange.objects.filter(status=Status.QUEUED, lease_expires_at__lt=now).update(
        status=Status.PENDING,
        lease_owner="",
        lease_expires_at=None,
        next_attempt_at=now,
        status_reason=NEVER_TAKEN,
    )
    lost = list(
        OutboundChange.objects.filter(
            status=Status.RUNNING, lease_expires_at__lt=now
        ).select_related("integration")
    )
    limits = _attempt_limits(lost)
    for change in lost:
        reaped += _reap_running(change, limits[(change.integration_id, change.entity_type)], now)
    if reaped:
        metrics.CHANGES_REAPED.inc(reaped)
        log.info("outbound.reaped", changes=reaped)
    return reaped


def _attempt_limits(changes) -> dict:
    pairs = {(c.integration_id, c.entity_type) for c in changes}
    configured = {
        (integration_id, entity_type): limit
        for integration_id, entity_type, limit in SyncTask.objects.filter(
            integration_id__in={integration_id for integration_id, _ in pairs}
        ).values_list("integration_id", "entity_type", "push_max_attempts")
        if limit
    }
    return {pair: configured.get(pair) or settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS for pair in pairs}


def _reap_running(change: OutboundChange, limit: int, now) -> int:
    entry = {
        "attempt": change.attempts,
        "at": now.isoformat(),
        "outcome": "lost",
        "execution_id": change.execution_id,
        "message": "the worker stopped (crashed or killed) before recording a result",
    }
    attempt_log = [*(change.attempt_log or []), entry][-OutboundChange.MAX_ATTEMPT_LOG :]
    metrics.LOST_ATTEMPTS.labels(change.integration.provider).inc()
    # Fenced by the dead worker's token: a worker that renewed a moment ago keeps its change.
    expired = OutboundChange.objects.filter(
        pk=change.pk, status=Status.RUNNING, lease_expires_at__lt=now
    )
    if change.attempts < limit:
        return fenced_update(
            expired,
            change.lease_owner,
            dict(
                status=Status.PENDING,
                lease_owner="",
                lease_expires_at=None,
                next_attempt_at=now,
                status_reason=PUSHED_AGAIN,
                attempt_log=attempt_log,
                lost_attempts=F("lost_attempts") + 1,
            ),
        )
    message = (
        f"gave up after {change.attempts} attempts: the worker stopped (crashed or killed) "
        "during the last one, so this change may be what stops it"
    )
    with transaction.atomic():
        dead = dict(
            status=Status.DEAD,
            lease_owner="",
            lease_expires_at=None,
            finished_at=now,
            error_code=WorkerLost.code,
            error_summary=message,
            status_reason=f"dead letter: {message}",
            attempt_log=attempt_log,
            lost_attempts=F("lost_attempts") + 1,
        )
        if not fenced_update(expired, change.lease_owner, dead):
            return 0
        change.attempt_log = attempt_log
        dead_letter_create(change=change, exc=WorkerLost(message))
    metrics.DEAD_LETTERS.labels(change.integration.provider).inc()
    log.warning(
        "outbound.dead_letter",
        change_id=str(change.pk),
        code=WorkerLost.code,
        attempts=change.attempts,
    )
    return 1
