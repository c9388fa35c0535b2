"""Dry-run preview of a sync task: what the next run would create, update and delete.

:func:`sync_task_preview` checks the task exactly as a worker would
(:meth:`syncing.inbound.InboundRun.preflight`: integration operational, mapping, dedup and
conflict configuration, the stored cursor and watermark), fetches up to ``pages`` pages from
where the next run would start, and runs the real page pipeline
(:class:`syncing.pipeline.PagePipeline`) over them — but nothing is kept:

* record writes go to a capturing store that reads through to the real one and writes
  nothing (so this is also safe with the Cosmos DB store, which cannot roll back);
* everything else the pipeline writes (manual-review ``Conflict`` rows, outbound changes for
  conflicts resolved in favour of local data) happens inside a transaction that is rolled
  back, so its after-commit wake-ups are dropped too.

The pages are fetched *before* that transaction opens: on SQLite a write transaction holds the
database lock, which must not wait on a provider. Fetching costs real requests (through the
rate limiter, like any fetch); the task's state, checkpoint and runs are not touched.

Used by the API (``POST /api/v1/sync-tasks/{id}/dry-run/``) and the admin's dry-run action.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from castiel.http.errors import DEFERRED, REFUSED, OutboundError, next_step
from integrations.adapters.base import AdapterError
from syncing.models import SyncTask
from syncing.pipeline import PagePipeline
from syncing.stores import get_store
from syncing.stores.base import RecordStore

MAX_PAGES = 10
# The pipeline's outcome names → the preview's lists.
LISTS = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "unchanged": "unchanged",
    "echoes": "unchanged",
    "conflicts": "conflict",
}


class PreviewError(Exception):
    """The preview cannot run; ``code`` and ``status`` are the API's."""

    def __init__(self, code: str, message: str, *, status: int = 409, retry_after=None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after


@dataclass
class PreviewItem:
    external_id: str
    record_id: str
    outcome: str  # the pipeline's: created, updated, deleted, unchanged, echoes, conflicts
    fields: list[str] = field(default_factory=list)  # fields whose local value would change
    data: dict | None = None  # the local data after the run (None: unchanged / untouched)


@dataclass
class Preview:
    task_id: str
    pages: int = 0
    fetched: int = 0
    has_more: bool = False  # the provider has more pages than were previewed
    create: list[PreviewItem] = field(default_factory=list)
    update: list[PreviewItem] = field(default_factory=list)
    delete: list[PreviewItem] = field(default_factory=list)
    unchanged: list[PreviewItem] = field(default_factory=list)
    conflict: list[PreviewItem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # the run counters it would add
    errors: list[str] = field(default_factory=list)  # records that could not be mapped

    def add(self, item: PreviewItem) -> None:
        getattr(self, LISTS[item.outcome]).append(item)


class _CapturingStore(RecordStore):
    """Reads go to the real store; writes are remembered, never made."""

    def __init__(self, real: RecordStore):
        self.real = real
        self.written: dict = {}

    def atomic(self):
        return self.real.atomic()

    def get_many(self, scope, ids, *, lock=False):
        return self.real.get_many(scope, ids)  # no locks: nothing will be written

    def find_by_keys(self, scope, keys):
        return self.real.find_by_keys(scope, keys)

    def find_by_external_ids(self, scope, external_ids, **kwargs):
        return self.real.find_by_external_ids(scope, external_ids)

    def write(self, scope, creates, updates):
        for record in [*creates, *updates]:
            self.written[record.id] = record

    def mark_seen(self, scope, ids, generation):
        pass


class _PreviewPipeline(PagePipeline):
    """The real pipeline, noting the outcome it decides for every record."""

    def __init__(self, *args, preview: Preview, **kwargs):
        super().__init__(*args, **kwargs)
        self.preview = preview

    def _decide(self, decision, now, open_conflicts, new_conflicts):
        outcome, record = super()._decide(decision, now, open_conflicts, new_conflicts)
        existing = decision.existing
        old = existing.data if existing is not None else {}
        new = record.data if record is not None else old
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if outcome == "deleted":
            changed = []
        self.preview.add(
            PreviewItem(
                external_id=decision.external_id,
                record_id=str(decision.target_id),
                outcome=outcome,
                fields=changed,
                data=new if (record is not None and (changed or existing is None)) else None,
            )
        )
        return outcome, record


def sync_task_preview(task: SyncTask, pages: int = 1) -> Preview:
    """What the next run of ``task`` would do with its first ``pages`` pages (writes nothing).

    Raises :class:`PreviewError` when the task cannot run as configured (409 with the run's
    error code) or the provider cannot be read (502, or 429 when rate-limited).
    """
    from syncing.inbound import InboundRun, SyncFailure

    pages = max(1, min(int(pages), MAX_PAGES))
    task = SyncTask.objects.select_related("integration").get(pk=task.pk)
    run = InboundRun(task, run=None, token="")
    try:
        run.preflight()
    except SyncFailure as exc:
        status = 409 if exc.code.startswith("integration_") else 400
        raise PreviewError(exc.code, str(exc), status=status) from None
    except AdapterError as exc:
        raise PreviewError(exc.code, str(exc), status=400) from None

    fetched_pages = _fetch(run.adapter, run.cursor, run.since, pages)
    preview = Preview(task_id=str(task.pk), pages=len(fetched_pages))
    preview.has_more = bool(fetched_pages) and fetched_pages[-1].next_cursor is not None
    counts: Counter = Counter()
    store = _CapturingStore(get_store())
    with transaction.atomic():
        pipeline = _PreviewPipeline(
            task=task,
            adapter=run.adapter,
            mapping=run.mapping,
            strategy=run.strategy,
            store=store,
            generation=None,  # a preview never soft-deletes what it did not see
            run=None,
            preview=preview,
        )
        for page in fetched_pages:
            result = pipeline.apply(page.records)
            counts.update(result.counts)
            preview.errors.extend(result.errors)
        transaction.set_rollback(True)  # conflicts and outbound changes it opened: undone
    preview.fetched = counts["fetched"]
    preview.counts = {name: n for name, n in counts.items() if n}
    return preview


def _fetch(adapter, cursor, since, pages: int) -> list:
    fetched = []
    for _ in range(pages):
        try:
            page = adapter.fetch_page(cursor, since=since)
        except OutboundError as exc:
            if next_step(exc) in (DEFERRED, REFUSED) or getattr(exc, "status", None) == 429:
                raise PreviewError(
                    "rate_limited",
                    f"the provider or the rate limiter asks to wait: {exc}",
                    status=429,
                    retry_after=exc.retry_after,
                ) from None
            raise PreviewError(
                "provider_error", f"fetching a page failed: {exc}", status=502
            ) from None
        except AdapterError as exc:
            raise PreviewError(exc.code, f"fetching a page failed: {exc}", status=502) from None
        fetched.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    return fetched
