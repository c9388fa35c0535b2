"""The scheduler tick: claim due sync tasks fairly, in batches, and wake inbound workers.

Each batch is one short transaction:

1. pick up to ``batch_size`` due, free tasks, **fair across tenants**: tasks are ranked
   inside their tenant (priority, then how long they have been due) and the batch takes
   every tenant's rank 1 before anyone's rank 2 — so one tenant's 10,000 due tasks cannot
   delay another tenant's single task. Priority orders a tenant's own tasks and breaks ties
   between tenants; it cannot jump the fairness order, because tenants set it themselves;
2. lock them: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent ticks split the work
   instead of waiting; on SQLite (no row locks) the UPDATE's ``lease_owner = ''`` condition is
   what makes a claim exclusive, and SQLite serialises the writers;
3. write the lease (a fresh token, ``status=queued``) and enqueue one message per task after
   commit (``castiel.queue.enqueue``). The message only wakes a worker; the lease on the row is
   the truth (see :mod:`syncing.leases`).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from castiel.observability.logging import get_logger
from castiel.queue import enqueue
from integrations.models import Integration
from syncing import metrics
from syncing.leases import new_token
from syncing.models import SyncRun, SyncTask

log = get_logger(__name__)

WORKER = "syncing.tasks.run_inbound"


def due(now=None):
    """Tasks the scheduler may claim now (free, enabled, their integration operational)."""
    now = now or timezone.now()
    return SyncTask.objects.filter(
        enabled=True,
        next_run_at__lte=now,
        lease_owner="",
        integration__enabled=True,
        integration__status=Integration.Status.ACTIVE,
    ).exclude(status=SyncTask.Status.PAUSED)


def fair_candidates(now, limit: int) -> list:
    ranked = (
        due(now)
        .annotate(
            tenant_rank=Window(
                RowNumber(),
                partition_by=[F("tenant_id")],
                order_by=[F("priority").desc(), F("next_run_at").asc(), F("id").asc()],
            )
        )
        .order_by("tenant_rank", "-priority", "next_run_at", "id")
        .values_list("id", flat=True)
    )
    return list(ranked[:limit])


def claim(ids, *, trigger: str = SyncRun.Trigger.SCHEDULE, now=None) -> list:
    """Lease the free tasks among ``ids`` and enqueue them; return the ids claimed."""
    if not ids:
        return []
    now = now or timezone.now()
    token = new_token()  # one token per batch: (task id, token) is still unique per claim
    expires = now + timedelta(seconds=settings.CASTIEL_SYNC_QUEUE_LEASE_SECONDS)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(
                SyncTask.objects.filter(id__in=ids, lease_owner="")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            if not ids:
                return []
        SyncTask.objects.filter(id__in=ids, lease_owner="").update(
            lease_owner=token,
            status=SyncTask.Status.QUEUED,
            queued_at=now,
            lease_expires_at=expires,
            run_requested=False,
        )
        claimed = list(
            SyncTask.objects.filter(id__in=ids, lease_owner=token).values_list("id", flat=True)
        )
        for task_id in claimed:
            enqueue(WORKER, str(task_id), token, str(trigger), kind="inbound")
    metrics.TASKS_CLAIMED.inc(len(claimed))
    return claimed


def tick(*, batch_size: int | None = None, max_batches: int | None = None) -> int:
    """Claim and enqueue due tasks, batch after batch, until none is left (bounded)."""
    batch_size = batch_size or settings.CASTIEL_SYNC_BATCH_SIZE
    max_batches = max_batches or settings.CASTIEL_SYNC_TICK_MAX_BATCHES
    total = 0
    for _ in range(max_batches):
        now = timezone.now()
        candidates = fair_candidates(now, batch_size)
        if not candidates:
            break
        claimed = claim(candidates, now=now)
        total += len(claimed)
        if not claimed or len(candidates) < batch_size:
            break  # nothing left, or another tick holds the rest
    if total:
        log.info("sync.tick", claimed=total)
    return total


def run_now(task: SyncTask) -> bool:
    """Claim one task immediately, whatever its schedule (admin and API "run now").

    Returns False if the task is busy; it is then flagged to run again as soon as the
    current run ends.
    """
    claimed = claim([task.id], trigger=SyncRun.Trigger.MANUAL)
    if claimed:
        return True
    SyncTask.objects.filter(id=task.id).update(run_requested=True)
    return False
