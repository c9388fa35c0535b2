"""The inbound worker: one execution of one sync task, page by page, resumable.

``run_inbound(task_id, token, trigger)`` (queued by the scheduler) takes the lease, opens a
``SyncRun`` and pages through the provider with the task's adapter. For each page, in ONE
transaction: fence the lease → dedup → conflict check → bulk upsert → cursor checkpoint →
run counters. A crash loses at most the page in flight; the next run resumes from the
checkpoint (``SyncTask.checkpoint``), and re-applying a page is harmless.

Waiting: retryable failures (timeouts, 429, 5xx, a malformed page, a limiter's "wait") are
retried with full-jitter backoff that never undercuts ``Retry-After``; short waits happen in
the worker (renewing the lease), long ones release the task with ``next_run_at`` set and
the run marked ``deferred``. Past the retry limit, or on a permanent error, the run fails with
its reason and the checkpoint stays where the last committed page left it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from castiel.http.errors import DEFERRED, PERMANENT, REFUSED, OutboundError, next_step
from castiel.http.retry import full_jitter_delay
from castiel.observability.context import get_correlation_id, get_execution_id
from castiel.observability.logging import get_logger
from castiel.queue import enqueue
from integrations.adapters.base import AdapterError, InvalidCursor, adapter_for
from integrations.adapters.normalize import parse_timestamp
from syncing import metrics
from syncing.inbound import leases
from syncing.inbound.next_run import next_run_after
from syncing.inbound.pipeline import OUTCOMES, PipelineConfigError, pipeline_for_task
from syncing.models import SyncRun, SyncTask
from syncing.records.stores import get_store
from syncing.records.stores.base import RecordStoreUnavailable, StaleRecordError

log = get_logger(__name__)
MAX_RETRY_LOG = 20
# The run's error code when the record store (Cosmos DB) stays unreachable past the retries.
STORE_UNAVAILABLE = "record_store_unavailable"


class SyncFailure(Exception):
    """The run cannot succeed as configured; recorded on the run with a stable code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Deferred(Exception):
    """Stop now and continue from the checkpoint after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str):
        super().__init__(reason)
        self.delay = delay


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


WAKE_UP = "syncing.tasks.run_inbound_batch"


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
    InboundRun(task, run, token, deadline=deadline).execute()
    run.refresh_from_db()
    return run.status


class InboundRun:
    def __init__(self, task: SyncTask, run: SyncRun, token: str, *, deadline: float | None = None):
        self.task = task
        self.run = run
        self.token = token
        self.provider = task.integration.provider
        self.started = time.monotonic()
        # Stop (deferring to a fresh execution from the checkpoint) before the worker's
        # timeout: at the run's own budget, or earlier if the wake-up that runs it says so.
        own_deadline = self.started + settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS
        self.deadline = min(own_deadline, deadline) if deadline else own_deadline

    # -- lifecycle -------------------------------------------------------------------------

    def execute(self) -> None:
        log.info("sync.run_started", task_id=str(self.task.id), run_id=str(self.run.id))
        try:
            self.preflight()
            self.pages()
        except leases.LeaseLost:
            self._finish_run(SyncRun.Status.LOST, "lease_lost", "the task's lease was lost")
        except Deferred as exc:
            self._defer(exc)
        except SyncFailure as exc:
            self._fail(exc.code, str(exc))
        except AdapterError as exc:
            self._fail(exc.code, str(exc))
        except OutboundError as exc:
            self._fail(_outbound_code(exc), _outbound_message(exc))
        except RecordStoreUnavailable as exc:
            self._fail(STORE_UNAVAILABLE, str(exc))
        except Exception as exc:
            log.exception("sync.run_crashed", task_id=str(self.task.id))
            self._fail("internal_error", f"{exc.__class__.__name__}: {str(exc)[:300]}")

    def preflight(self) -> None:
        task, integration = self.task, self.task.integration
        if not integration.enabled:
            raise SyncFailure(
                "integration_disabled", f"integration {integration.name!r} is disabled"
            )
        if integration.status != integration.Status.ACTIVE:
            reason = f": {integration.status_reason}" if integration.status_reason else ""
            raise SyncFailure(
                "integration_not_active",
                f"integration {integration.name!r} is {integration.status}{reason}",
            )
        self.adapter = adapter_for(integration, task.entity_type)
        self.adapter.validate()
        checkpoint = task.checkpoint or {}
        if not isinstance(checkpoint, dict) or not isinstance(task.state or {}, dict):
            raise SyncFailure("invalid_cursor", "stored checkpoint/state is not an object")
        try:
            self.adapter.validate_cursor(checkpoint.get("cursor"))
        except InvalidCursor as exc:
            raise SyncFailure("invalid_cursor", f"stored cursor is invalid: {exc}") from None
        since = (
            checkpoint["since"] if "since" in checkpoint else (task.state or {}).get("watermark")
        )
        if task.mode == SyncTask.Mode.FULL:
            since = checkpoint.get("since")  # a full refresh reads everything
        if since is not None and (not isinstance(since, str) or parse_timestamp(since) is None):
            raise SyncFailure("invalid_cursor", f"stored watermark {since!r} is not a timestamp")
        self.since = since
        self.cursor = checkpoint.get("cursor")
        self.max_updated_raw = checkpoint.get("max_updated_at")
        self.max_updated = parse_timestamp(self.max_updated_raw)
        self.generation = None
        if task.mode == SyncTask.Mode.FULL:
            self.generation = checkpoint.get("generation") or task.full_refresh_generation + 1
        try:
            self.pipeline = pipeline_for_task(
                task,
                adapter=self.adapter,
                store=get_store(),
                generation=self.generation,
                run=self.run,
            )
        except PipelineConfigError as exc:
            raise SyncFailure(exc.code, str(exc)) from None

    # -- paging ----------------------------------------------------------------------------

    def pages(self) -> None:
        while True:
            if time.monotonic() > self.deadline:
                raise Deferred(0, "time budget reached; continuing from the checkpoint")
            fetch_started = time.perf_counter()
            page = self.fetch()
            metrics.PAGE_DURATION.labels(self.provider, "fetch").observe(
                time.perf_counter() - fetch_started
            )
            if page.next_cursor is not None and page.next_cursor == self.cursor:
                raise SyncFailure(
                    "pagination_stuck",
                    f"the provider returned the same cursor again: {self.cursor}",
                )
            commit_started = time.perf_counter()
            self.commit_with_retries(page)
            metrics.PAGE_DURATION.labels(self.provider, "commit").observe(
                time.perf_counter() - commit_started
            )
            if page.next_cursor is None:
                self._succeed()
                return
            self.cursor = page.next_cursor
            self._respect_exhausted_limit(page)

    def fetch(self):
        attempt = 0
        while True:
            attempt += 1
            leases.renew(self.task.id, self.token)
            try:
                return self.adapter.fetch_page(self.cursor, since=self.since)
            except InvalidCursor as exc:
                raise SyncFailure("invalid_cursor", str(exc)) from None
            except AdapterError as exc:
                if next_step(exc) == PERMANENT:
                    raise
                reason, code, retry_after = str(exc), exc.code, None
            except OutboundError as exc:
                step = next_step(exc)  # the classification the push worker uses too
                if step == PERMANENT:
                    raise
                if step in (DEFERRED, REFUSED):
                    # The rate limiter said wait (nothing was sent): not a failed attempt.
                    # The gate already waited what is reasonable in-process.
                    raise Deferred(exc.retry_after or 1.0, f"rate limiter: {exc}") from None
                reason, code, retry_after = (
                    _outbound_message(exc),
                    _outbound_code(exc),
                    (exc.retry_after),
                )
            self._wait_to_retry(attempt, code, reason, retry_after)

    def _wait_to_retry(self, attempt: int, code: str, reason: str, retry_after) -> None:
        """Back off before attempt ``attempt + 1`` (in the worker, or deferred when long);
        past the retry limit the run fails with ``code``."""
        if attempt > settings.CASTIEL_SYNC_MAX_RETRIES:
            raise SyncFailure(code, f"gave up after {attempt} attempts: {reason}")
        delay = full_jitter_delay(
            attempt,
            base=settings.CASTIEL_SYNC_RETRY_BASE_SECONDS,
            cap=settings.CASTIEL_SYNC_RETRY_CAP_SECONDS,
            retry_after=retry_after,
        )
        self._record_retry(code, reason, delay, retry_after)
        if delay > settings.CASTIEL_SYNC_MAX_INLINE_WAIT:
            raise Deferred(delay, f"waiting {delay:.0f}s before retrying: {reason}")
        self._sleep(delay)

    def _respect_exhausted_limit(self, page) -> None:
        """The provider said 0 requests remain: wait for its reset before asking again."""
        info = page.rate_limit
        if info is None or info.remaining != 0 or not info.reset_after:
            return
        if info.reset_after > settings.CASTIEL_SYNC_MAX_INLINE_WAIT:
            raise Deferred(info.reset_after, "provider rate limit exhausted until its reset")
        self._sleep(info.reset_after)
        SyncRun.objects.filter(id=self.run.id).update(
            waited_seconds=F("waited_seconds") + info.reset_after
        )

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 5.0))
            leases.renew(self.task.id, self.token)

    def _record_retry(self, code, reason, delay, retry_after) -> None:
        metrics.RETRIES.labels(self.provider, code).inc()
        entry = {
            "at": timezone.now().isoformat(),
            "page": self.run.pages + 1,
            "code": code,
            "reason": reason[:300],
            "delay": round(delay, 3),
            "retry_after": retry_after,
        }
        self.run.retry_log = [*self.run.retry_log, entry][-MAX_RETRY_LOG:]
        self.run.retries += 1
        self.run.waited_seconds += delay
        SyncRun.objects.filter(id=self.run.id).update(
            retries=F("retries") + 1,
            waited_seconds=F("waited_seconds") + delay,
            retry_log=self.run.retry_log,
            heartbeat_at=timezone.now(),
        )
        log.warning("sync.retry", code=code, reason=reason[:300], delay=round(delay, 3))

    def commit_with_retries(self, page) -> None:
        """Commit a page; when the record store is unreachable, or a concurrent writer (a
        webhook upsert, an API edit) changed one of its records between the page's read and
        its write, the page transaction rolls back — checkpoint included — and the page is
        applied again (re-read, re-decided) after a backoff. Writes outside the database
        (Cosmos DB) that landed before the failure are idempotent on the replay."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.commit(page)
            except RecordStoreUnavailable as exc:
                code, reason, retry_after = STORE_UNAVAILABLE, str(exc), exc.retry_after
            except StaleRecordError as exc:
                code, reason, retry_after = "stale_records", str(exc), None
            self._wait_to_retry(attempt, code, reason, retry_after)
            leases.renew(self.task.id, self.token)

    def commit(self, page) -> None:
        """Apply one page and move the checkpoint, atomically (fenced by the lease)."""
        store = self.pipeline.store
        last = page.next_cursor is None
        with transaction.atomic(), store.atomic():
            leases.lock_for_page(self.task.id, self.token)
            result = self.pipeline.apply(page.records)
            if result.max_updated_at and (
                self.max_updated is None or result.max_updated_at > self.max_updated
            ):
                self.max_updated = result.max_updated_at
                self.max_updated_raw = result.max_updated_raw
            deleted_unseen = 0
            fields: dict = {}
            if last:
                now = timezone.now()
                if self.generation is not None:
                    deleted_unseen = store.soft_delete_unseen(
                        self.pipeline.scope, self.generation, now
                    )
                    fields["full_refresh_generation"] = self.generation
                state = dict(self.task.state or {})
                watermark = self._new_watermark()
                if watermark:
                    state["watermark"] = watermark
                fields.update(checkpoint={}, state=state)
            else:
                fields["checkpoint"] = {
                    "run_id": str(self.run.id),
                    "cursor": page.next_cursor,
                    "since": self.since,
                    "generation": self.generation,
                    "max_updated_at": self.max_updated_raw,
                }
            leases.renew(self.task.id, self.token, **fields)
            counts = result.counts
            counts["deleted"] += deleted_unseen
            rules = dict(self.run.dedup_rules or {})
            for rule, n in result.rules.items():
                rules[rule] = rules.get(rule, 0) + n
            self.run.dedup_rules = rules
            errors = result.errors
            summary = self.run.error_summary
            if errors:
                summary = "\n".join([*filter(None, summary.split("\n")), *errors][-10:])
                self.run.error_summary = summary
            SyncRun.objects.filter(id=self.run.id).update(
                pages=F("pages") + 1,
                heartbeat_at=timezone.now(),
                dedup_rules=rules,
                error_summary=summary,
                **{name: F(name) + counts[name] for name in OUTCOMES if counts[name]},
            )
        self.run.pages += 1
        for name in OUTCOMES:
            if counts[name]:
                setattr(self.run, name, getattr(self.run, name) + counts[name])
                metrics.RECORDS.labels(self.provider, name).inc(counts[name])

    def _new_watermark(self) -> str | None:
        """The next run's ``since``: the newest updated-at seen (never moving backwards).

        Kept in the provider's own spelling; with an overlap configured it becomes ISO 8601
        with milliseconds.
        """
        previous_raw = (self.task.state or {}).get("watermark")
        if self.max_updated is None:
            return previous_raw
        overlap = settings.CASTIEL_SYNC_SINCE_OVERLAP_SECONDS
        candidate = self.max_updated - timedelta(seconds=overlap)
        previous = parse_timestamp(previous_raw)
        if previous and previous >= candidate:
            return previous_raw
        return self.max_updated_raw if not overlap else _iso(candidate)

    # -- endings ---------------------------------------------------------------------------

    def _succeed(self) -> None:
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
        self._finish_run(SyncRun.Status.SUCCEEDED)

    def _defer(self, exc: Deferred) -> None:
        now = timezone.now()
        released = leases.release(
            self.task.id,
            self.token,
            status=SyncTask.Status.IDLE,
            status_reason=str(exc),
            next_run_at=now + timedelta(seconds=exc.delay),
        )
        self._finish_run(SyncRun.Status.DEFERRED, "deferred", str(exc))
        if released and exc.delay == 0:
            from syncing.inbound.scheduler import claim

            claim([self.task.id], trigger=SyncRun.Trigger.RESUME)

    def _fail(self, code: str, message: str) -> None:
        now = timezone.now()
        failures = self.task.consecutive_failures + 1
        backoff = full_jitter_delay(
            failures,
            base=settings.CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS,
            cap=max(self.task.interval_seconds, settings.CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS),
        )
        leases.release(
            self.task.id,
            self.token,
            status=SyncTask.Status.FAILED,
            status_reason=f"{code}: {message}"[:2000],
            consecutive_failures=failures,
            next_run_at=now + timedelta(seconds=backoff),
        )
        log.warning("sync.run_failed", code=code, reason=message[:500])
        self._finish_run(SyncRun.Status.FAILED, code, message)

    def _finish_run(self, status: str, code: str = "", message: str = "") -> None:
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


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _outbound_code(exc: OutboundError) -> str:
    status = getattr(exc, "status", None)
    return f"http_{status}" if status else exc.code.lower()


def _outbound_message(exc: OutboundError) -> str:
    excerpt = getattr(exc, "body_excerpt", "")
    message = str(exc)
    if excerpt:
        message += f" — {excerpt[:200]}"
    return message
