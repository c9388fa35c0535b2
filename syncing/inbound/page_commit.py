"""Committing one page: the pipeline's writes, the cursor checkpoint and the run's counters in
ONE transaction, fenced by the lease — a crash loses at most the page in flight, and the next
run resumes from the checkpoint (re-applying a page is harmless).

When the record store is unreachable, or a concurrent writer (a webhook upsert, an API edit)
changed one of the page's records between its read and its write, the page transaction rolls
back — checkpoint included — and the page is applied again (re-read, re-decided) after a
backoff. Writes outside the database (Cosmos DB) that landed before the failure are
idempotent on the replay. The last page also soft-deletes what a full refresh did not see and
moves the watermark.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.adapters.normalize import parse_timestamp
from syncing import metrics
from syncing.inbound import leases
from syncing.inbound.errors import STORE_UNAVAILABLE
from syncing.inbound.pipeline import OUTCOMES
from syncing.inbound.preflight import Plan
from syncing.inbound.waiting import Waiting
from syncing.models import SyncRun, SyncTask
from syncing.records import history
from syncing.records.stores.base import RecordStoreUnavailable, StaleRecordError


class PageCommit:
    """The page commits of one run of ``task`` under ``token``."""

    def __init__(self, task: SyncTask, run: SyncRun, token: str, plan: Plan, provider: str):
        self.task = task
        self.run = run
        self.token = token
        self.plan = plan
        self.provider = provider

    def commit_with_retries(self, page, waiting: Waiting, mapped=None) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.commit(page, mapped)
                waiting.renewed()  # the page's commit renewed the lease
                return
            except RecordStoreUnavailable as exc:
                code, reason, retry_after = STORE_UNAVAILABLE, str(exc), exc.retry_after
            except StaleRecordError as exc:
                code, reason, retry_after = "stale_records", str(exc), None
            waiting.retry(attempt, code, reason, retry_after)
            waiting.renew()

    def commit(self, page, mapped=None) -> None:
        """Apply one page (``mapped``: its records mapped already) and move the checkpoint,
        atomically (fenced by the lease)."""
        plan = self.plan
        store = plan.pipeline.store
        with transaction.atomic(), store.atomic():
            leases.lock_for_page(self.task.id, self.token)
            result = plan.pipeline.apply(page.records, mapped)
            if result.max_updated_at and (
                plan.max_updated is None or result.max_updated_at > plan.max_updated
            ):
                plan.max_updated = result.max_updated_at
                plan.max_updated_raw = result.max_updated_raw
            deleted_unseen = 0
            if page.next_cursor is None:
                deleted_unseen, fields = self._last_page(store)
            else:
                fields = {
                    "checkpoint": {
                        "run_id": str(self.run.id),
                        "cursor": page.next_cursor,
                        "since": plan.since,
                        "generation": plan.generation,
                        "max_updated_at": plan.max_updated_raw,
                    }
                }
            leases.renew(self.task.id, self.token, **fields)
            counts = result.counts
            counts["deleted"] += deleted_unseen
            self._count(result, counts)
        self.run.pages += 1
        for name in OUTCOMES:
            if counts[name]:
                setattr(self.run, name, getattr(self.run, name) + counts[name])
                metrics.RECORDS.labels(self.provider, name).inc(counts[name])

    def _last_page(self, store) -> tuple[int, dict]:
        """(records a full refresh did not see, now deleted; the task's fields to write)."""
        plan = self.plan
        deleted_unseen = 0
        fields: dict = {}
        if plan.generation is not None:
            gone = store.soft_delete_unseen(plan.pipeline.scope, plan.generation, timezone.now())
            source, source_id = plan.pipeline.history_source
            history.removed(gone, source=source, source_id=source_id)
            deleted_unseen = len(gone)
            fields["full_refresh_generation"] = plan.generation
        state = dict(self.task.state or {})
        watermark = self.new_watermark()
        if watermark:
            state["watermark"] = watermark
        fields.update(checkpoint={}, state=state)
        return deleted_unseen, fields

    def _count(self, result, counts) -> None:
        """The run's counters, dedup rules and error samples, in the page's transaction."""
        rules = dict(self.run.dedup_rules or {})
        for rule, n in result.rules.items():
            rules[rule] = rules.get(rule, 0) + n
        self.run.dedup_rules = rules
        summary = self.run.error_summary
        if result.errors:
            summary = "\n".join([*filter(None, summary.split("\n")), *result.errors][-10:])
            self.run.error_summary = summary
        SyncRun.objects.filter(id=self.run.id).update(
            pages=F("pages") + 1,
            heartbeat_at=timezone.now(),
            dedup_rules=rules,
            error_summary=summary,
            **{name: F(name) + counts[name] for name in OUTCOMES if counts[name]},
        )

    def new_watermark(self) -> str | None:
        """The next run's ``since``: the newest updated-at seen (never moving backwards).

        Kept in the provider's own spelling; with an overlap configured it becomes ISO 8601
        with milliseconds.
        """
        previous_raw = (self.task.state or {}).get("watermark")
        if self.plan.max_updated is None:
            return previous_raw
        overlap = settings.CASTIEL_SYNC_SINCE_OVERLAP_SECONDS
        candidate = self.plan.max_updated - timedelta(seconds=overlap)
        previous = parse_timestamp(previous_raw)
        if previous and previous >= candidate:
            return previous_raw
        return self.plan.max_updated_raw if not overlap else _iso(candidate)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
