"""Dry run: what the next run of a sync task would create, update and delete — written nowhere.

:func:`sync_task_preview` reads the first page(s) the task's next run would read (from its
checkpoint or watermark, through the real adapter and client: credentials, rate limits and
the SSRF guard apply, so the fetch counts against the provider's limits like any request)
and runs them through the real page pipeline — mapping, dedup, conflict check — so the
decisions are exactly a run's. Nothing is kept:

* the record store is wrapped so writes are captured, not applied (the Cosmos DB store
  cannot join a transaction, so rolling back alone would not be enough);
* everything relational the pipeline writes (conflict rows, outbound changes for conflicts
  local data won, history rows) is inside a transaction that is rolled back;
* the task's lease, checkpoint, watermark and runs are never touched, so a preview can run
  while the task itself is running.

Each page is decided against the store as it is now, not as earlier previewed pages would
have left it (a record on two pages shows twice). A full refresh also deletes, at its end,
records the provider no longer returns: the preview cannot know those from a few pages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from castiel.http.errors import OutboundError
from integrations.adapters.base import AdapterError
from syncing.errors import error_code, error_message
from syncing.inbound.errors import SyncFailure
from syncing.inbound.pipeline import OUTCOMES
from syncing.inbound.preflight import preflight
from syncing.models import Conflict, SyncTask
from syncing.records import history

MAX_PAGES = 5
MAX_ITEMS = 500


@dataclass
class PreviewItem:
    action: str  # created / updated / deleted / restored / conflict
    external_id: str
    record_id: str
    fields: list[str] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "external_id": self.external_id,
            "record_id": self.record_id,
            "fields": self.fields,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class Preview:
    task_id: str
    mode: str
    since: str | None = None
    cursor: dict | None = None
    pages: int = 0
    more_pages: bool = False
    counts: Counter = field(default_factory=Counter)
    items: list[PreviewItem] = field(default_factory=list)
    truncated: bool = False
    errors: list[str] = field(default_factory=list)
    error_code: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def as_dict(self) -> dict:
        return {
            "task": self.task_id,
            "mode": self.mode,
            "since": self.since,
            "cursor": self.cursor,
            "pages": self.pages,
            "more_pages": self.more_pages,
            "counts": {name: self.counts.get(name, 0) for name in OUTCOMES},
            "items": [item.as_dict() for item in self.items],
            "truncated": self.truncated,
            "record_errors": self.errors,
            "error_code": self.error_code,
            "error": self.error,
        }


class CapturingStore:
    """A record store that reads through to the real one and keeps writes to itself."""

    def __init__(self, store):
        self._store = store
        self.creates: list = []
        self.updates: list = []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def write(self, scope, creates, updates):
        self.creates.extend(creates)
        self.updates.extend(updates)

    def mark_seen(self, scope, ids, generation):
        pass

    def soft_delete_unseen(self, scope, generation, at):
        return []

    def save_record(self, record):
        self.updates.append(record)
        return record

    def create_record(self, record):
        self.creates.append(record)
        return record

    def remove(self, tenant_id, record_id):
        pass

    def mark_pushed(self, *args, **kwargs):
        pass


def sync_task_preview(*, task: SyncTask, max_pages: int = 1) -> Preview:
    """Fetch up to ``max_pages`` pages as the task's next run would and decide them."""
    task = SyncTask.objects.select_related("integration", "tenant").get(pk=task.pk)
    max_pages = max(1, min(int(max_pages), MAX_PAGES))
    preview = Preview(task_id=str(task.pk), mode=task.mode)
    # The worker's own preflight (config checks, adapter, cursor, watermark, pipeline) without
    # a run or a lease: nothing it does writes.
    try:
        plan = preflight(task)
    except (SyncFailure, AdapterError) as exc:
        preview.error_code, preview.error = exc.code, str(exc)
        return preview
    store = CapturingStore(plan.pipeline.store)
    plan.pipeline.store = store
    preview.since, preview.cursor = plan.since, plan.cursor
    cursor = plan.cursor
    for _ in range(max_pages):
        try:
            page = plan.adapter.fetch_page(cursor, since=plan.since)
        except (AdapterError, OutboundError) as exc:
            # The codes a run would record (http_404, timeout, credential_unavailable …).
            preview.error_code, preview.error = error_code(exc), error_message(exc)
            return preview
        _decide(preview, plan.pipeline, store, page.records)
        preview.pages += 1
        if page.next_cursor is None:
            preview.more_pages = False
            return preview
        preview.more_pages = True
        cursor = page.next_cursor
    return preview


def _decide(preview: Preview, pipeline, store: CapturingStore, records: list[dict]) -> None:
    task = pipeline.task
    store.creates, store.updates = [], []
    with transaction.atomic():
        open_before = set(
            Conflict.objects.filter(task=task, status=Conflict.Status.OPEN).values_list(
                "pk", flat=True
            )
        )
        result = pipeline.apply(records)
        conflicts = list(
            Conflict.objects.filter(task=task, status=Conflict.Status.OPEN).exclude(
                pk__in=open_before
            )
        )
        # Everything relational the pipeline wrote goes away with this transaction.
        transaction.set_rollback(True)
    preview.counts.update({k: v for k, v in result.counts.items() if k in OUTCOMES})
    preview.errors.extend(result.errors)
    existing = store.get_many(pipeline.scope, [r.id for r in store.updates])
    found = [(None, r) for r in store.creates]
    found += [(existing.get(r.id), r) for r in store.updates]
    for before, after in found:
        change = history.classify(before, after)
        if change is None:
            continue  # bookkeeping only (the synced base moved): nothing a user would see
        action, fields = change
        _add(
            preview,
            PreviewItem(
                action=action,
                external_id=after.external_id,
                record_id=str(after.id),
                fields=fields,
                before=before.data if before is not None else None,
                after=after.data,
            ),
        )
    for conflict in conflicts:
        _add(
            preview,
            PreviewItem(
                action="conflict",
                external_id=conflict.external_id,
                record_id=str(conflict.record_id),
                fields=list(conflict.fields),
                before=conflict.local_data,
                after=conflict.remote_data,
            ),
        )


def _add(preview: Preview, item: PreviewItem) -> None:
    if len(preview.items) >= MAX_ITEMS:
        preview.truncated = True
        return
    preview.items.append(item)
