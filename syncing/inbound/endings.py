"""How an inbound run ends: succeeded, deferred (continues from the checkpoint later), failed
(its reason recorded, the task backing off) or lost (its lease went to another worker). Each
gives the task's lease back, fenced, with the task's next state, and closes the ``SyncRun``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from castiel.events import Kind, Subject, emit
from castiel.http.retry import RetryPolicy
from castiel.observability.logging import get_logger
from syncing import metrics
from syncing.inbound import leases
from syncing.inbound.errors import Deferred
from syncing.inbound.next_run import next_run_after
from syncing.inbound.scheduler import claim
from syncing.models import SyncRun, SyncTask

log = get_logger(__name__)

BUDGET_REACHED = "time budget reached; continuing from the checkpoint"


class Endings:
    def __init__(self, task: SyncTask, run: SyncRun, token: str, provider: str, started: float):
        self.task = task
        self.run = run
        self.token = token
        self.provider = provider
        self.started = started  # time.monotonic() at the run's start

    def succeed(self) -> None:
        now = timezone.now()
        requested = (
            SyncTask.objects.filter(id=self.task.id).values_list("run_requested", flat=True).first()
        )
        leases.release(
            self.task.id,
            self.token,
            status=SyncTask.Status.IDLE,
            status_reason="",
            consecutive_failures=0,
            last_success_at=now,
            run_requested=False,
            next_run_at=now if requested else next_run_after(self.task, self.run.started_at, now),
        )
        self.finish_run(SyncRun.Status.SUCCEEDED)
        self.notify(Kind.SYNC_COMPLETED, "", run_id=str(self.run.id))
        # Notifications on transitions only: a success after failures, or a run that fits its
        # budget again after one that did not.
        if self.task.consecutive_failures:
            self.notify(Kind.SYNC_RECOVERED, "the task's run succeeded again")
        if self.task.status_reason == BUDGET_REACHED:
            self.notify(Kind.SYNC_WITHIN_BUDGET, "the run finished within its time budget")

    def defer(self, exc: Deferred) -> None:
        now = timezone.now()
        released = leases.release(
            self.task.id,
            self.token,
            status=SyncTask.Status.IDLE,
            status_reason=str(exc),
            next_run_at=now + timedelta(seconds=exc.delay),
        )
        self.finish_run(SyncRun.Status.DEFERRED, "deferred", str(exc))
        if str(exc) == BUDGET_REACHED:
            self.notify(
                Kind.SYNC_OVER_BUDGET, str(exc), budget=settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS
            )
        if released and exc.delay == 0:
            claim([self.task.id], trigger=SyncRun.Trigger.RESUME)

    def fail(self, code: str, message: str) -> None:
        now = timezone.now()
        failures = self.task.consecutive_failures + 1
        # Failed runs back off too, up to the task's own interval.
        backoff = RetryPolicy(
            base=settings.CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS,
            cap=max(self.task.interval_seconds, settings.CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS),
        ).delay(failures)
        leases.release(
            self.task.id,
            self.token,
            status=SyncTask.Status.FAILED,
            status_reason=f"{code}: {message}"[:2000],
            consecutive_failures=failures,
            next_run_at=now + timedelta(seconds=backoff),
        )
        log.warning("sync.run_failed", code=code, reason=message[:500])
        self.finish_run(SyncRun.Status.FAILED, code, message)
        self.notify(Kind.SYNC_FAILING, f"{code}: {message}"[:500], consecutive_failures=failures)
        self.notify(
            Kind.SYNC_FAILED,
            f"{code}: {message}"[:500],
            run_id=str(self.run.id),
            code=code,
            consecutive_failures=failures,
        )

    def notify(self, kind: Kind, message: str, **details) -> None:
        emit(
            kind,
            tenant=self.task.tenant_id,
            integration=self.task.integration_id,
            subject=Subject.of(self.task),
            message=message,
            details=details,
        )

    def lost(self) -> None:
        self.finish_run(SyncRun.Status.LOST, "lease_lost", "the task's lease was lost")

    def finish_run(self, status: str, code: str = "", message: str = "") -> None:
        now = timezone.now()
        summary = message
        if self.run.error_summary and message:
            summary = f"{message}\n{self.run.error_summary}"
        elif self.run.error_summary:
            summary = self.run.error_summary
        SyncRun.objects.filter(id=self.run.id).update(
            status=status,
            finished_at=now,
            heartbeat_at=now,
            error_code=code,
            error_summary=summary[:5000],
        )
        if any(getattr(self.run, name) for name in ("created", "updated", "deleted")):
            # One event per run that changed records, whatever its ending (its pages are
            # committed): the tenant's application reads exactly those changes from the feed.
            self.notify(Kind.RECORDS_CHANGED, "", run_id=str(self.run.id), status=status)
        duration = time.monotonic() - self.started
        metrics.RUNS.labels(self.provider, status).inc()
        metrics.RUN_DURATION.labels(self.provider).observe(duration)
        if duration > 0 and self.run.fetched:
            metrics.RUN_RATE.labels(self.provider).observe(self.run.fetched / duration)
        log.info(
            "sync.run_finished",
            task_id=str(self.task.id),
            run_id=str(self.run.id),
            status=status,
            pages=self.run.pages,
            fetched=self.run.fetched,
            error_code=code or None,
        )
