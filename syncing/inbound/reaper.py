"""The reaper (maintenance schedule): return expired leases, mark runs that died.

A lease expires when its worker died (SIGKILL, OOM, a lost host) or its queue message was
lost (django-q2's Redis broker drops messages held by dead workers). The reaper makes the
task due again — the next scheduler tick claims it and the new run resumes from the
checkpoint — and marks the run that held the lease ``lost``. Each release is a conditional
UPDATE on the expired token, so a worker that renewed its lease a moment ago is left alone.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from castiel.db.leases import fenced_update
from castiel.observability.logging import get_logger
from syncing import metrics
from syncing.models import SyncRun, SyncTask

log = get_logger(__name__)


def reap(now=None) -> dict[str, int]:
    now = now or timezone.now()
    expired = list(
        SyncTask.objects.filter(lease_expires_at__lt=now)
        .exclude(lease_owner="")
        .values_list("id", "lease_owner", "status")[:1000]
    )
    leases = runs = 0
    for task_id, owner, status in expired:
        with transaction.atomic():
            expired_here = SyncTask.objects.filter(id=task_id, lease_expires_at__lt=now)
            released = fenced_update(
                expired_here,
                owner,
                dict(
                    lease_owner="",
                    lease_expires_at=None,
                    queued_at=None,
                    status=SyncTask.Status.IDLE,
                    status_reason=f"lease expired while {status}; resuming from the checkpoint",
                    next_run_at=now,
                ),
            )
            if not released:
                continue
            leases += 1
            runs += SyncRun.objects.filter(
                task_id=task_id, lease_owner=owner, status=SyncRun.Status.RUNNING
            ).update(
                status=SyncRun.Status.LOST,
                finished_at=now,
                error_code="worker_lost",
                error_summary=(
                    "the worker stopped renewing its lease (crashed or killed); the next run "
                    "resumes from the last committed page"
                ),
            )
    # Runs whose worker vanished without the task noticing (e.g. the lease was already
    # handed on): nothing has renewed them for longer than a lease.
    stale_before = now - timedelta(seconds=settings.CASTIEL_SYNC_LEASE_SECONDS * 2)
    orphans = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale_before)
    orphaned = 0
    for run in orphans.select_related("task")[:1000]:
        if run.task.lease_owner == run.lease_owner and run.task.status == SyncTask.Status.RUNNING:
            continue  # still leased: its task's expiry decides
        orphaned += SyncRun.objects.filter(id=run.id, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.LOST,
            finished_at=now,
            error_code="worker_lost",
            error_summary="no progress for longer than two leases",
        )
    if leases or runs or orphaned:
        metrics.LEASES_REAPED.inc(leases)
        log.info("sync.reaped", leases=leases, runs=runs + orphaned)
    return {"leases": leases, "runs": runs + orphaned}
