"""A push batch's hold on its outbox rows: every write of a change's state, fenced by the lease.

A push worker holds its changes by a lease token (``lease_owner``) and status ``running``; a
change whose lease expired and went to another worker must not be overwritten by the slow
first holder. :func:`fenced_update` is that check and write for one change, and
:func:`fenced_update_many` for a group of results (one ``UPDATE … FROM (VALUES …)`` on
PostgreSQL) — both the shared primitive of :mod:`castiel.db.leases` bound to the outbox.
:class:`BatchLease` is what a batch does with its hold: take the changes, renew, count an
attempt, write an outcome, give a change back to the outbox.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from castiel.db import leases
from castiel.db.leases import LeaseLost
from castiel.observability.logging import get_logger
from castiel.tenancy.models import active_tenant_ids
from syncing.models import OutboundChange

log = get_logger(__name__)

Status = OutboundChange.Status
RUNNING = Status.RUNNING
MAX_ATTEMPT_LOG = OutboundChange.MAX_ATTEMPT_LOG


def fenced_update(pk, token: str, fields: dict) -> bool:
    """Update one change if ``token`` still holds it; False when the lease was lost."""
    rows = OutboundChange.objects.filter(pk=pk, status=RUNNING)
    return bool(leases.fenced_update(rows, token, fields))


def fenced_update_many(token: str, updates: list[tuple[object, dict]]) -> set:
    """Apply ``(pk, fields)`` updates held by ``token``; return the pks actually updated."""
    return leases.fenced_update_many(OutboundChange, token, updates, held={"status": RUNNING})


class BatchLease:
    """The changes one batch token holds, and every write the batch makes to them."""

    def __init__(self, token: str, execution_id: str):
        self.token = token
        self.execution_id = execution_id
        self.renewed = time.monotonic()
        self.taken = 0  # how many changes take() moved to running

    def take(self) -> list[OutboundChange]:
        """queued → running (fenced by the token), counting an attempt for each. A change whose
        tenant was deactivated after the claim is not taken: it stays queued until the reaper
        returns it, and no claim takes it while the tenant is inactive."""
        now = timezone.now()
        queued = OutboundChange.objects.filter(
            status=Status.QUEUED, lease_expires_at__gt=now, tenant_id__in=active_tenant_ids()
        )
        self.taken = leases.fenced_update(
            queued,
            self.token,
            dict(
                status=Status.RUNNING,
                lease_expires_at=now + timedelta(seconds=settings.CASTIEL_OUTBOUND_LEASE_SECONDS),
                attempts=F("attempts") + 1,
                last_attempt_at=now,
                first_attempt_at=Coalesce(F("first_attempt_at"), Value(now)),
                execution_id=self.execution_id,
            ),
        )
        if not self.taken:
            log.info("outbound.stale_message", token=self.token)
            return []
        return list(
            OutboundChange.objects.filter(lease_owner=self.token, status=RUNNING)
            .select_related("integration")
            .order_by("seq")
        )

    def renew(self, force: bool = False) -> None:
        """Extend the lease of every change this batch still holds (every lease/4 at most)."""
        lease = settings.CASTIEL_OUTBOUND_LEASE_SECONDS
        if not force and time.monotonic() - self.renewed < lease / 4:
            return
        now = timezone.now()
        running = OutboundChange.objects.filter(status=RUNNING, lease_expires_at__gt=now)
        leases.fenced_update(
            running, self.token, {"lease_expires_at": now + timedelta(seconds=lease)}
        )
        self.renewed = time.monotonic()

    def count_attempt(self, change: OutboundChange) -> bool:
        """An inline retry is a new attempt; False when the change is no longer held."""
        now = timezone.now()
        counted = fenced_update(
            change.pk, self.token, {"attempts": F("attempts") + 1, "last_attempt_at": now}
        )
        if counted:
            change.attempts += 1
            change.last_attempt_at = now
        return counted

    # -- outcomes ------------------------------------------------------------------------------

    def write(self, change, **fields) -> None:
        """Write ``fields`` on a held change, or raise :class:`LeaseLost`."""
        if not fenced_update(change.pk, self.token, fields):
            raise LeaseLost(str(change.pk))

    def finish(self, change, status: str, **fields) -> str:
        self.write(change, **self.finish_fields(change, status, **fields))
        return status

    def skip(self, change, reason: str) -> str:
        self.finish(change, Status.SKIPPED, status_reason=reason)
        return "skipped"

    def finish_fields(self, change, status: str, **fields) -> dict:
        """A final outcome's fields: the lease given up, timings, the attempt logged."""
        now = timezone.now()
        started = change.last_attempt_at or now
        return dict(
            status=status,
            lease_owner="",
            lease_expires_at=None,
            finished_at=now,
            duration_ms=round((now - started).total_seconds() * 1000, 1),
            error_code="",
            attempt_log=self.log(change, status, **{k: v for k, v in fields.items() if v}),
            **fields,
        )

    def release(
        self, change, *, delay: float, reason: str, attempted: bool, log=None, due_at=None
    ) -> None:
        """Back to the outbox, due in ``delay`` seconds — or at ``due_at`` exactly, when given
        (an attempt not ``attempted`` is not counted); a lost lease is the new holder's
        business."""
        fields = {
            "status": Status.PENDING,
            "lease_owner": "",
            "lease_expires_at": None,
            "next_attempt_at": due_at or timezone.now() + timedelta(seconds=delay),
            "status_reason": reason[:2000],
        }
        if log is not None:
            fields["attempt_log"] = log
        if not attempted:
            fields["attempts"] = F("attempts") - 1
        if attempted and change.error_code:
            fields["error_code"] = change.error_code
        try:
            self.write(change, **fields)
        except LeaseLost:
            pass

    def log(self, change, outcome: str, **details) -> list:
        """The change's attempt log with this attempt's entry (kept on ``change`` too)."""
        entry = {
            "attempt": change.attempts,
            "at": timezone.now().isoformat(),
            "outcome": outcome,
            "execution_id": self.execution_id,
            **{k: v for k, v in details.items() if k in ("code", "status", "message", "delay")},
            **({"retry_after": details["retry_after"]} if "retry_after" in details else {}),
        }
        if change.last_attempt_at:
            elapsed = (timezone.now() - change.last_attempt_at).total_seconds()
            entry["duration_ms"] = round(elapsed * 1000, 1)
        change.attempt_log = [*(change.attempt_log or []), entry][-MAX_ATTEMPT_LOG:]
        return change.attempt_log
