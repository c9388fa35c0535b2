"""Task leases: who may run a sync task, until when. A task never runs twice at once.

A claim (scheduler tick or "run now") writes a fresh random ``lease_owner`` token on a free
task (``status=queued``) and sends the token in the queue message. The worker *takes* the
lease only if the row still carries that token and is still queued, then renews it before
every request and at every page commit. Every write a worker makes to the task is *fenced*
(:mod:`castiel.db.leases`): ``UPDATE … WHERE id = … AND lease_owner = <token>``; zero rows
means the lease was lost (it expired and the reaper handed the task to someone else), and the
worker stops without committing. A duplicate or late queue message (django-q2's ORM broker
redelivers, the reaper re-enqueues) finds the token gone or the task already running and does
nothing.

These are plain conditional UPDATEs, so they are correct on SQLite too, where
``select_for_update`` is a no-op (its IMMEDIATE transactions serialise writers instead).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from castiel.db.leases import LeaseLost, fenced_update, fenced_update_or_raise, new_token
from castiel.tenancy.models import active_tenant_ids
from syncing.models import SyncTask

__all__ = ["LeaseLost", "lease_seconds", "lock_for_page", "new_token", "release", "renew", "take"]


def lease_seconds() -> int:
    return settings.CASTIEL_SYNC_LEASE_SECONDS


def take(task_id, token: str) -> bool:
    """Queued → running, if the claim that sent this message still holds the task — and its
    tenant is still active: a task claimed just before its tenant was deactivated stays queued
    until the reaper returns it, and no claim takes it then. (An integration disabled after
    the claim fails the run instead, with the reason, in the worker.)"""
    now = timezone.now()
    queued = SyncTask.objects.filter(
        id=task_id,
        status=SyncTask.Status.QUEUED,
        lease_expires_at__gt=now,
        tenant_id__in=active_tenant_ids(),
    )
    fields = dict(
        status=SyncTask.Status.RUNNING,
        lease_expires_at=now + timedelta(seconds=lease_seconds()),
        last_run_at=now,
    )
    return bool(fenced_update(queued, token, fields))


def renew(task_id, token: str, **fields) -> None:
    """Extend the lease (and write ``fields``), or raise LeaseLost."""
    now = timezone.now()
    running = SyncTask.objects.filter(
        id=task_id, status=SyncTask.Status.RUNNING, lease_expires_at__gt=now
    )
    fields = {"lease_expires_at": now + timedelta(seconds=lease_seconds()), **fields}
    fenced_update_or_raise(running, token, fields, lost=f"lease on task {task_id} lost")


def lock_for_page(task_id, token: str) -> None:
    """Inside the page transaction: hold the task row so the reaper cannot take it meanwhile.

    The renewing UPDATE does it: on PostgreSQL it locks the row it renews (the reaper's UPDATE
    waits, then re-checks the renewed expiry); on SQLite it takes the database write lock for
    the transaction. A lost lease matches no row and raises LeaseLost.
    """
    renew(task_id, token)


def release(task_id, token: str, **fields) -> bool:
    """Give the lease back (fenced) and write the task's next state."""
    fields.setdefault("status", SyncTask.Status.IDLE)
    fields = {"lease_owner": "", "lease_expires_at": None, "queued_at": None, **fields}
    return bool(fenced_update(SyncTask.objects.filter(id=task_id), token, fields))
