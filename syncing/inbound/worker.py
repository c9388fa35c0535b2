"""The inbound worker: one execution of one sync task, page by page, resumable.

``run_inbound(task_id, token, trigger)`` (woken by the scheduler through :func:`run_claimed`)
takes the lease (``leases.py``), opens a ``SyncRun`` and runs :class:`InboundRun`: the
preflight (``preflight.py``: the integration is usable, the task's configuration builds a
pipeline, where to start), then page after page — fetch with retries (``fetch.py``), commit
the page with its checkpoint in ONE transaction fenced by the lease (``page_commit.py``) —
until the provider has no next page or the run's time budget is spent. A crash loses at most
the page in flight; the next run resumes from the checkpoint (``SyncTask.checkpoint``).

Waiting (``waiting.py``): retryable failures back off with full jitter, never below
``Retry-After``; short waits happen in the worker (renewing the lease), long ones release the
task with ``next_run_at`` set and the run marked ``deferred``. Past the retry limit, or on a
permanent error, the run fails with its reason and the checkpoint stays where the last
committed page left it (``endings.py``).
"""

from __future__ import annotations

import time
from functools import partial

from django.conf import settings

from castiel.db import overlap
from castiel.db.leases import LeaseLost
from castiel.http.errors import OutboundError
from castiel.observability import tracing
from castiel.observability.context import get_correlation_id, get_execution_id
from castiel.observability.logging import get_logger
from castiel.queue import enqueue
from integrations.adapters.base import AdapterError
from syncing import metrics
from syncing.inbound import leases
from syncing.inbound.endings import BUDGET_REACHED, Endings
from syncing.inbound.errors import (
    STORE_UNAVAILABLE,
    Deferred,
    SyncFailure,
    outbound_code,
    outbound_message,
)
from syncing.inbound.fetch import fetch_page
from syncing.inbound.page_commit import PageCommit
from syncing.inbound.preflight import preflight
from syncing.inbound.read_ahead import ReadAhead
from syncing.inbound.waiting import Waiting
from syncing.models import SyncRun, SyncTask
from syncing.records.stores.base import RecordStoreUnavailable

log = get_logger(__name__)

WAKE_UP = "syncing.tasks.run_inbound_batch"


def run_claimed(token: str, trigger: str = SyncRun.Trigger.SCHEDULE, slot: int = 0, slots: int = 1):
    """One wake-up for a claimed batch: run the batch's tasks that are still waiting.

    The scheduler sends a few small wake-ups per claimed batch instead of one message per
    task (building and signing 10,000 django-q2 messages cost more than claiming the tasks).
    Each woken worker reads which of the batch's tasks are still queued — the database is the
    truth — and runs them one after another, starting at its own slot so the workers woken
    for one batch spread over it; a task another worker already took is skipped (its take is
    a no-op). A worker that has used half its time budget stops starting new tasks and sends
    a fresh wake-up for whatever is left. Returns how many tasks this worker ran.
    """
    budget = settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS
    deadline = time.monotonic() + budget
    waiting = list(
        SyncTask.objects.filter(lease_owner=token, status=SyncTask.Status.QUEUED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    start = (len(waiting) * slot) // max(1, slots)
    ran = 0
    for task_id in waiting[start:] + waiting[:start]:
        if time.monotonic() > deadline - budget / 2:
            enqueue(WAKE_UP, token, str(trigger), kind="inbound")
            break
        if run_inbound(task_id, token, trigger, deadline=deadline) is not None:
            ran += 1
    return ran


def run_inbound(
    task_id: str,
    token: str,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    *,
    deadline: float | None = None,
):
    """Run one claimed task (None if the claim no longer holds it: a duplicate or late
    wake-up, or another worker took it)."""
    if not leases.take(task_id, token):
        # A duplicate or late wake-up: the claim it belonged to is gone or already running.
        log.info("sync.stale_message", task_id=task_id)
        return None
    task = SyncTask.objects.select_related("integration").get(id=task_id)
    previous_run = (task.checkpoint or {}).get("run_id")
    run = SyncRun.objects.create(
        tenant_id=task.tenant_id,
        task=task,
        mode=task.mode,
        trigger=SyncRun.Trigger.RESUME
        if previous_run and trigger == SyncRun.Trigger.SCHEDULE
        else trigger,
        resumed_from_id=previous_run
        if previous_run and SyncRun.objects.filter(id=previous_run).exists()
        else None,
        lease_owner=token,
        execution_id=get_execution_id() or "",
        correlation_id=get_correlation_id() or "",
    )
    ids = {"tenant": task.tenant_id, "integration": task.integration_id, "task": task.id}
    with tracing.span("castiel.sync.run", **ids, run=run.id, provider=task.integration.provider):
        InboundRun(task, run, token, deadline=deadline).execute()
        run.refresh_from_db()
        tracing.set_span_attributes(outcome=run.status, count=run.fetched)
    return run.status


class InboundRun:
    def __init__(self, task: SyncTask, run: SyncRun, token: str, *, deadline: float | None = None):
        self.task = task
        self.run = run
        self.token = token
        self.provider = task.integration.provider
        started = time.monotonic()
        # Stop (deferring to a fresh execution from the checkpoint) before the worker's
        # timeout: at the run's own budget, or earlier if the wake-up that runs it says so.
        own_deadline = started + settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS
        self.deadline = min(own_deadline, deadline) if deadline else own_deadline
        self.waiting = Waiting(task, run, token, self.provider)
        self.ending = Endings(task, run, token, self.provider, started)

    def execute(self) -> None:
        log.info("sync.run_started", task_id=str(self.task.id), run_id=str(self.run.id))
        try:
            self.pages()
        except LeaseLost:
            self.ending.lost()
        except Deferred as exc:
            self.ending.defer(exc)
        except (SyncFailure, AdapterError) as exc:
            self.ending.fail(exc.code, str(exc))
        except OutboundError as exc:
            self.ending.fail(outbound_code(exc), outbound_message(exc))
        except RecordStoreUnavailable as exc:
            self.ending.fail(STORE_UNAVAILABLE, str(exc))
        except Exception as exc:
            log.exception("sync.run_crashed", task_id=str(self.task.id))
            self.ending.fail("internal_error", f"{exc.__class__.__name__}: {str(exc)[:300]}")

    def pages(self) -> None:
        plan = preflight(self.task, self.run)
        ahead = ReadAhead(plan)
        try:
            self._pages(plan, ahead)
        finally:
            ahead.close()

    def _pages(self, plan, ahead: ReadAhead) -> None:
        pages = PageCommit(self.task, self.run, self.token, plan, self.provider)
        while True:
            if time.monotonic() > self.deadline:
                raise Deferred(0, BUDGET_REACHED)
            fetch_started = time.perf_counter()
            page = fetch_page(plan, self.waiting, first=ahead.take(plan.cursor))
            metrics.PAGE_DURATION.labels(self.provider, "fetch").observe(
                time.perf_counter() - fetch_started
            )
            if page.next_cursor is not None and page.next_cursor == plan.cursor:
                raise SyncFailure(
                    "pagination_stuck",
                    f"the provider returned the same cursor again: {plan.cursor}",
                )
            commit_started = time.perf_counter()
            with overlap.meanwhile(self._read_ahead(ahead, page)):
                pages.commit_with_retries(page, self.waiting, ahead.mapped(page))
            metrics.PAGE_DURATION.labels(self.provider, "commit").observe(
                time.perf_counter() - commit_started
            )
            if page.next_cursor is None:
                self.ending.succeed()
                return
            plan.cursor = page.next_cursor
            self.waiting.respect_exhausted_limit(page)

    def _read_ahead(self, ahead: ReadAhead, page):
        """What to start once the page's last statements are sent: the next page's request,
        unless there is none, the provider's limit says to wait first, or the run's time is
        up (the next page belongs to the next execution)."""
        info = page.rate_limit
        exhausted = info is not None and info.remaining == 0
        if page.next_cursor is None or exhausted or time.monotonic() > self.deadline:
            return lambda: None
        return partial(ahead.start, page.next_cursor)
