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
3. write the lease (a fresh token per batch, ``status=queued``) and, after commit, send a
   few small wake-ups for the batch (``CASTIEL_SYNC_WAKEUPS_PER_BATCH``, one per task for
   small batches). A woken worker runs the batch's still-queued tasks from the database
   (:func:`syncing.inbound.worker.run_claimed`): the message only wakes a worker; the lease on the
   row is the truth (see :mod:`syncing.inbound.leases`). The PostgreSQL claim is one
   hand-written statement (tuned: docs/benchmarks.md, ``scheduler``); the token and the SQLite
   claim are the shared ones of :mod:`castiel.db.leases`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from castiel.db.leases import claim_listed, new_token
from castiel.observability.logging import get_logger
from castiel.queue import enqueue_many
from castiel.tenancy.models import Tenant
from integrations.models import Integration
from syncing import metrics
from syncing.models import SyncRun, SyncTask

log = get_logger(__name__)

WORKER = "syncing.tasks.run_inbound_batch"
RANK_LOOKAHEAD_BATCHES = 10


def due(now=None):
    """Tasks the scheduler may claim now (free, enabled, their integration operational, their
    tenant active: a deactivated tenant's tasks wait, unclaimed, until it is reactivated)."""
    now = now or timezone.now()
    return SyncTask.objects.filter(
        enabled=True,
        next_run_at__lte=now,
        lease_owner="",
        integration__enabled=True,
        integration__status=Integration.Status.ACTIVE,
        tenant__is_active=True,
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
    """Lease the free tasks among ``ids`` and enqueue them; return the ids claimed.

    Whoever picked ``ids`` (the tick, "run now"), a task of a deactivated tenant or of a
    disabled integration is never claimed: the claim itself checks both.
    """
    if not ids:
        return []
    now = now or timezone.now()
    token = new_token()  # one token per batch: (task id, token) is still unique per claim
    expires = now + timedelta(seconds=settings.CASTIEL_SYNC_QUEUE_LEASE_SECONDS)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            claimed = _claim_postgres(ids, token=token, now=now, expires=expires)
        else:
            # SQLite: no row locks; the conditional UPDATE is the claim (writers serialise).
            claimed = claim_listed(
                SyncTask,
                ids,
                token=token,
                values=dict(
                    status=SyncTask.Status.QUEUED,
                    queued_at=now,
                    lease_expires_at=expires,
                    run_requested=False,
                ),
                free=dict(lease_owner="", tenant__is_active=True, integration__enabled=True),
            )
        slots = min(len(claimed), settings.CASTIEL_SYNC_WAKEUPS_PER_BATCH)
        enqueue_many(
            WORKER, [(token, str(trigger), slot, slots) for slot in range(slots)], kind="inbound"
        )
    metrics.TASKS_CLAIMED.inc(len(claimed))
    return claimed


def _claim_postgres(ids, *, token, now, expires) -> list:
    """One statement: lock the free rows (skipping rows another tick holds) and lease them."""
    table = SyncTask._meta.db_table
    tenants, integrations = Tenant._meta.db_table, Integration._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET lease_owner = %s, status = %s, queued_at = %s,
                   lease_expires_at = %s, run_requested = false
             WHERE id IN (
                   SELECT s.id FROM {table} s
                     JOIN {tenants} t ON t.id = s.tenant_id
                     JOIN {integrations} i ON i.id = s.integration_id
                    WHERE s.id = ANY(%s) AND s.lease_owner = ''
                      AND t.is_active AND i.enabled
                    FOR UPDATE OF s SKIP LOCKED)
            RETURNING id
            """,  # noqa: S608 - the table names are ours; every value is a parameter
            [token, SyncTask.Status.QUEUED, now, expires, list(ids)],
        )
        return [row[0] for row in cursor.fetchall()]


def tick(*, batch_size: int | None = None, max_batches: int | None = None) -> int:
    """Claim and enqueue due tasks, batch after batch, until none is left (bounded)."""
    batch_size = batch_size or settings.CASTIEL_SYNC_BATCH_SIZE
    max_batches = max_batches or settings.CASTIEL_SYNC_TICK_MAX_BATCHES
    total = 0
    batches = 0
    while batches < max_batches:
        now = timezone.now()
        # Rank once for several batches: the fair order barely changes within a tick, and
        # each claim re-checks that a task is still free. Ranking per batch made a
        # 10,000-task tick scan the whole due set a hundred times.
        lookahead = min(max_batches - batches, RANK_LOOKAHEAD_BATCHES)
        candidates = fair_candidates(now, batch_size * lookahead)
        if not candidates:
            break
        claimed_here = 0
        for start in range(0, len(candidates), batch_size):
            claimed = claim(candidates[start : start + batch_size], now=now)
            claimed_here += len(claimed)
            batches += 1
        total += claimed_here
        if not claimed_here or len(candidates) < batch_size * lookahead:
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
