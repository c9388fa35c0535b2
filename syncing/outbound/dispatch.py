"""Dispatch: claim due outbox changes in batches and queue one push message per batch.

:func:`dispatch` (woken after a local change commits — :func:`syncing.records.outbox.
request_dispatch` —, after every batch, and by the minute tick) claims *due heads* — pending
changes whose ``next_attempt_at`` has come, whose integration is operational and that are the
oldest open change of their record — in batches of ``CASTIEL_OUTBOUND_BATCH_SIZE``, fairly
across tenants (``fair_claim.py``), the rest of a batch oldest first with the shared claim
(:func:`castiel.db.leases.claim`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
dispatchers split the work; a conditional ``UPDATE`` on SQLite, whose writers serialise).
Each batch gets a lease token and one message on the ``outbound`` cluster. At most
``CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES`` wait in the queue; the rest stays in the outbox.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from castiel.db.leases import claim as claim_rows
from castiel.db.leases import new_token
from castiel.events import Kind, emit
from castiel.observability.logging import get_logger
from castiel.queue import enqueue_many
from integrations.models import Integration
from syncing import metrics
from syncing.models import OutboundChange
from syncing.outbound.fair_claim import claim_fairly
from syncing.outbound.reaper import reap_expired
from syncing.records.outbox import WAKE_KEY

log = get_logger(__name__)

WORKER = "syncing.tasks.push_outbound_batch"
Status = OutboundChange.Status


def due(now=None):
    """Changes the dispatcher may claim now (the oldest open change of their record; its
    integration operational, its tenant active — a deactivated tenant's changes wait)."""
    now = now or timezone.now()
    earlier_open = OutboundChange.objects.filter(
        record_id=OuterRef("record_id"), seq__lt=OuterRef("seq"), status__in=OutboundChange.OPEN
    )
    return OutboundChange.objects.filter(
        status=Status.PENDING,
        lease_owner="",
        next_attempt_at__lte=now,
        integration__enabled=True,
        integration__status=Integration.Status.ACTIVE,
        tenant__is_active=True,
    ).filter(~Exists(earlier_open))


def claim(limit: int, *, now=None, suspects: bool = False) -> tuple[str, list]:
    """Lease up to ``limit`` due changes under one new token; return (token, ids).

    Fair across tenants (``fair_claim.py``): every tenant's oldest due change before anyone's
    second; what the per-tenant share leaves of the batch is filled oldest first.
    ``suspects``: claim among the changes whose worker stopped during an earlier attempt
    (``lost_attempts``; see ``reaper.py``) instead of the others — they are pushed one per
    batch.
    """
    now = now or timezone.now()
    token = new_token()
    expires = now + timedelta(seconds=settings.CASTIEL_OUTBOUND_QUEUE_LEASE_SECONDS)
    with transaction.atomic():
        if suspects:
            ids = _claim_oldest(token, expires, limit, due(now).filter(lost_attempts__gt=0))
        else:
            heads = due(now).filter(lost_attempts=0)
            ids = claim_fairly(token, expires, limit, now, heads)
            if len(ids) < limit:
                ids += _claim_oldest(token, expires, limit - len(ids), heads)
    metrics.CHANGES_CLAIMED.inc(len(ids))
    return token, ids


def _claim_oldest(token: str, expires, limit: int, candidates) -> list:
    """Lease the ``limit`` oldest of ``candidates`` under ``token``; the ids it leased."""
    return claim_rows(
        candidates.order_by("next_attempt_at", "seq"),
        token=token,
        limit=limit,
        values={"status": Status.QUEUED, "lease_expires_at": expires},
        free={"status": Status.PENDING, "lease_owner": ""},
    )


def queued_batches() -> int:
    return (
        OutboundChange.objects.filter(status=Status.QUEUED).values("lease_owner").distinct().count()
    )


def dispatch(*, max_batches: int | None = None) -> int:
    """Claim due changes in batches and queue one push message per batch; return how many."""
    try:
        cache.delete(WAKE_KEY)
    except Exception:
        log.warning("outbound.wake_flag_unavailable", exc_info=True)
    size = settings.CASTIEL_OUTBOUND_BATCH_SIZE
    room = max_batches
    if room is None:
        room = settings.CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES - queued_batches()
    tokens, total = [], 0
    for _ in range(max(0, room)):
        token, ids = claim(size)
        if not ids:
            break
        tokens.append((token,))
        total += len(ids)
        if len(ids) < size:
            break
    enqueue_many(WORKER, tokens, kind="outbound")
    if total:
        log.info("outbound.dispatched", changes=total, batches=len(tokens))
    return total


def dispatch_suspects(*, limit: int = 100) -> int:
    """Queue each due suspect change in a batch of its own; return how many.

    Run by the minute tick right after the reaper: a change whose worker stopped may be what
    stopped it, and alone it can only take itself down (its attempts run out and it becomes
    a dead letter) instead of every change batched with it.
    """
    tokens = []
    for _ in range(limit):
        token, ids = claim(1, suspects=True)
        if not ids:
            break
        tokens.append((token,))
    enqueue_many(WORKER, tokens, kind="outbound")
    if tokens:
        log.info("outbound.dispatched_suspects", changes=len(tokens))
    return len(tokens)


# -- the minute tick's housekeeping -----------------------------------------------------------


def prune_finished(now=None) -> int:
    """Delete finished changes older than the retention period (their dead letters too)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CASTIEL_OUTBOUND_RETENTION_DAYS)
    deleted, _ = OutboundChange.objects.filter(
        status__in=OutboundChange.FINAL, finished_at__lt=cutoff
    ).delete()
    return deleted


def tick() -> dict[str, int]:
    """The minute tick: reap expired leases, prune old results, dispatch what is due
    (suspect changes alone)."""
    return {
        "reaped": reap_expired(),
        "pruned": prune_finished(),
        "suspects": dispatch_suspects(),
        "dispatched": dispatch(),
        "backlogged": notify_backlog(),
    }


BACKLOGGED_KEY = "outbound:backlogged"
OPEN_STATUSES = (
    OutboundChange.Status.PENDING,
    OutboundChange.Status.QUEUED,
    OutboundChange.Status.RUNNING,
)


def notify_backlog(now=None) -> int:
    """Raise ``outbound.backlog`` for each integration whose oldest open change is older than
    ``CASTIEL_NOTIFY_BACKLOG_SECONDS``, and ``outbound.backlog_cleared`` for those that were
    backlogged at the previous tick and are not any more (remembered in the cache: a lost
    entry only leaves the incident to be resolved by hand)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CASTIEL_NOTIFY_BACKLOG_SECONDS)
    old = (
        OutboundChange.objects.filter(status__in=OPEN_STATUSES, created_at__lt=cutoff)
        .values("tenant_id", "integration_id")
        .annotate(oldest=Min("created_at"))
    )
    backlogged = {}
    for row in old:
        integration = str(row["integration_id"])
        backlogged[integration] = str(row["tenant_id"])
        age = (now - row["oldest"]).total_seconds()
        emit(
            Kind.OUTBOUND_BACKLOG,
            tenant=row["tenant_id"],
            integration=integration,
            subject=("integration", integration),
            message=f"the oldest open push waits for {age / 60:.0f} min",
            details={"age_seconds": round(age)},
        )
    try:
        before = cache.get(BACKLOGGED_KEY) or {}
        cache.set(BACKLOGGED_KEY, backlogged, timeout=None)
    except Exception:  # the cache down: no clearing this minute, nothing else lost
        log.warning("outbound.backlog_cache_unavailable", exc_info=True)
        before = {}
    for integration, tenant in before.items():
        if integration not in backlogged:
            emit(
                Kind.OUTBOUND_BACKLOG_CLEARED,
                tenant=tenant,
                integration=integration,
                subject=("integration", integration),
            )
    return len(backlogged)
