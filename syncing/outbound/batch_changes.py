"""Many local changes of one tenant in one call, written with set-based statements.

The batch twin of :mod:`syncing.outbound.local_changes`, for callers that change many
records at once (``POST /api/v1/records/batch/``, the admin's bulk delete): the same
per-record outcomes and error codes, the same outbox rows, the same history (and so the same
change-feed entries) — but a batch of 1,000 costs a handful of statements instead of a few
thousand round trips. One transaction:

1. the batch's existing records are read and locked (``SELECT … FOR UPDATE``, in id order —
   the pull pipeline's order: records, then their outbox rows);
2. each item is checked like a single write (``not_found``, ``record_deleted``,
   ``version_mismatch`` against its ``expected_version``, ``invalid``) and applied in memory;
3. the outbox rows: :func:`syncing.records.outbox.queue_changes` (one read of the open
   changes, one UPDATE … FROM VALUES for the merges, one multi-row INSERT — COPY on
   PostgreSQL);
4. the records: the ORM store's page write (one upsert per integration and entity type —
   COPY on PostgreSQL), the same path a pull page takes;
5. the history: one statement (:func:`syncing.records.history.local_changes`), after the
   record writes, so on PostgreSQL the whole batch gets one feed key that sorts after every
   earlier change of these records.

Two commit modes (docs/api.md, "Batch writes"):

* ``atomic=True`` — all or nothing: if any item fails its check, nothing is written; the
  failing items carry their error, the others ``not_applied`` (424).
* ``atomic=False`` (default) — per item: the items that pass are written (together, in one
  transaction) and the failing ones carry their error. With the rows locked, an item that
  passed its check cannot fail afterwards; a database failure rolls the whole batch back
  and nothing is reported as written.

A PostgreSQL deadlock (a single write or a pull page locking the same records in another
order) rolls the batch back; it is retried from the start, up to ``DEADLOCK_RETRIES`` times.

Record stores outside the database (Cosmos DB) cannot join the transaction: a per-item batch
runs each item through the single services (still one request for the caller); an atomic
batch is refused (``atomic_unsupported``), since undoing half a batch there is not possible
without the guarantees the relational transaction gives.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from castiel.observability.logging import get_logger
from syncing.models import OutboundChange, Record
from syncing.outbound import local_changes
from syncing.outbound.local_changes import RecordChangeError
from syncing.records import history, outbox
from syncing.records.diff import changed_fields
from syncing.records.hashing import content_hash, record_id
from syncing.records.outbox import PENDING_PREFIX
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope, StoredRecord
from syncing.records.stores.orm import OrmRecordStore, to_stored

log = get_logger(__name__)

MAX_ITEMS = 1000
DEADLOCK_RETRIES = 3
Operation = OutboundChange.Operation
CREATE, UPDATE, DELETE = Operation.CREATE, Operation.UPDATE, Operation.DELETE
NOT_APPLIED = RecordChangeError(
    "not applied: another item of this atomic batch failed", code="not_applied", status=424
)


@dataclass(frozen=True)
class BatchItem:
    """One change. ``create`` needs ``integration`` (the tenant's) and ``entity_type``;
    ``update`` and ``delete`` need ``record_id``; ``data`` is merged into the record, or
    replaces it with ``replace``."""

    op: str
    record_id: UUID | None = None
    integration: object | None = None
    entity_type: str = ""
    data: dict | None = None
    replace: bool = False
    expected_version: int | None = None


@dataclass
class ItemResult:
    index: int
    op: str
    record: StoredRecord | None = None
    change: OutboundChange | None = None  # None: nothing to push (no field changed …)
    error: RecordChangeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> int:
        if self.error is not None:
            return self.error.status
        return 201 if self.op == CREATE else 200


@dataclass
class BatchResult:
    results: list[ItemResult]
    atomic: bool
    applied: bool = field(default=True)  # False: an atomic batch that wrote nothing

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)


def records_write_batch(
    *,
    tenant_id,
    items: Sequence[BatchItem],
    atomic: bool = False,
    origin: str = OutboundChange.Origin.SERVICE,
    actor: str = "",
) -> BatchResult:
    """Apply ``items`` (at most ``MAX_ITEMS``, each record at most once) for ``tenant_id``."""
    if len(items) > MAX_ITEMS:
        raise RecordChangeError(f"at most {MAX_ITEMS} items per batch", code="invalid")
    store = get_store()
    if not isinstance(store, OrmRecordStore):
        if atomic:
            raise RecordChangeError(
                "atomic batches need the ORM record store; send atomic=false",
                code="atomic_unsupported",
            )
        return _one_by_one(tenant_id, items, origin=origin, actor=actor)
    # Retried only as its own transaction: inside a caller's, a deadlock aborts the caller's.
    attempts = 1 if connection.in_atomic_block else DEADLOCK_RETRIES
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic(), _all_sqlite_variables():
                result = _write(store, tenant_id, items, atomic=atomic, origin=origin, actor=actor)
                if result.applied and any(r.change is not None for r in result.results):
                    outbox.wake_after_commit()
            return result
        except OperationalError as exc:
            if attempt == attempts or not _is_deadlock(exc):
                raise
            log.warning("records.batch_deadlock_retry", attempt=attempt, items=len(items))
    raise AssertionError("unreachable")


# -- the set-based write -----------------------------------------------------------------------


@dataclass
class _Planned:
    result: ItemResult
    before: StoredRecord | None  # None: a create
    after: StoredRecord
    fields: list[str]


def _write(store, tenant_id, items, *, atomic, origin, actor) -> BatchResult:
    existing = _locked(tenant_id, {i.record_id for i in items if i.op != CREATE})
    results = [ItemResult(index, item.op) for index, item in enumerate(items)]
    planned: list[_Planned] = []
    seen: set[UUID] = set()
    now = timezone.now()
    for result, item in zip(results, items, strict=True):
        try:
            plan = _plan(item, result, tenant_id, existing, seen, now)
        except RecordChangeError as exc:
            result.error = exc
            continue
        if plan is None:  # nothing changed: answered with the record as it is
            continue
        planned.append(plan)
    if atomic and any(not r.ok for r in results):
        for r in results:
            if r.ok:
                r.error, r.record = NOT_APPLIED, None
        return BatchResult(results, atomic=True, applied=False)
    if not planned:
        return BatchResult(results, atomic=atomic)

    changes = outbox.queue_changes(
        [(p.after, p.result.op, p.fields) for p in planned], origin=origin, actor=actor
    )
    by_scope: dict[Scope, tuple[list, list]] = defaultdict(lambda: ([], []))
    for plan in planned:
        scope = Scope(plan.after.tenant_id, plan.after.integration_id, plan.after.entity_type)
        by_scope[scope][0 if plan.before is None else 1].append(plan.after)
    for scope, (creates, updates) in by_scope.items():
        store.write(scope, creates, updates)
    entries = []
    for plan, change in zip(planned, changes, strict=True):
        plan.result.record = plan.after.copy(etag=str(plan.after.version))
        plan.result.change = change
        action = {CREATE: "created", UPDATE: "updated", DELETE: "deleted"}[plan.result.op]
        source_id = str(change.pk) if change is not None else ""
        entries.append((plan.after, action, plan.fields if action == "updated" else [], source_id))
    history.local_changes(entries, origin=origin, actor=actor)
    return BatchResult(results, atomic=atomic)


def _plan(item: BatchItem, result, tenant_id, existing, seen, now) -> _Planned | None:
    if item.op == CREATE:
        integration = item.integration
        if integration is None or integration.tenant_id != tenant_id:
            raise RecordChangeError("no such integration", code="invalid")
        local_changes._check_data(item.data)
        external_id = f"{PENDING_PREFIX}{uuid.uuid4()}"
        record = StoredRecord(
            id=record_id(tenant_id, integration.pk, item.entity_type, external_id),
            tenant_id=tenant_id,
            integration_id=integration.pk,
            entity_type=item.entity_type,
            external_id=external_id,
            data=item.data,
            content_hash=content_hash(item.data),
            local_updated_at=now,
            synced_at=now,
            created_at=now,
        )
        return _Planned(result, None, record, list(item.data))
    if item.op not in (UPDATE, DELETE):
        raise RecordChangeError(f"unknown operation {item.op!r}", code="invalid")
    if item.record_id in seen:
        raise RecordChangeError(
            "this record is already changed by an earlier item of the batch",
            code="duplicate_record",
        )
    seen.add(item.record_id)
    if item.op == UPDATE:
        local_changes._check_data(item.data)
    result.record = existing.get(item.record_id)  # also answered with a version mismatch
    record = _checked(result.record, item.expected_version)
    if item.op == DELETE:
        after = record.copy(deleted_at=now, local_updated_at=now, version=record.version + 1)
        return _Planned(result, record, after, [])
    new_data = dict(item.data) if item.replace else {**record.data, **item.data}
    fields = changed_fields(record.data, new_data)
    if not fields:
        return None
    after = record.copy(
        data=new_data,
        content_hash=content_hash(new_data),
        local_updated_at=now,
        version=record.version + 1,
    )
    return _Planned(result, record, after, fields)


def _checked(record: StoredRecord | None, expected_version) -> StoredRecord:
    """What ``local_changes._load`` checks, on a record already read."""
    if record is None:
        raise RecordChangeError("no such record", code="not_found", status=404)
    if record.deleted_at is not None:
        raise RecordChangeError("the record is deleted", code="record_deleted", status=409)
    if expected_version is not None and expected_version != record.version:
        raise RecordChangeError(
            f"the record is at version {record.version}, not {expected_version}",
            code="version_mismatch",
            status=409,
        )
    return record


def _locked(tenant_id, ids) -> dict[UUID, StoredRecord]:
    """The tenant's records among ``ids``, locked until the batch commits (one statement;
    id order, so two batches over the same records never deadlock each other)."""
    ids = sorted(i for i in ids if i is not None)
    if not ids:
        return {}
    rows = Record.objects.filter(tenant_id=tenant_id, id__in=ids).order_by("id")
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()
    return {row.id: to_stored(row) for row in rows}


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(getattr(exc, "__cause__", None), "sqlstate", None) == "40P01"


@contextmanager
def _all_sqlite_variables() -> Iterator[None]:
    """Let Django's bulk statements use every variable this SQLite allows.

    Django assumes SQLite's old compile-time limit of 999 variables and splits a 1,000-row
    ``bulk_create`` of 13 columns into 14 statements; the SQLite linked here (3.32+) allows
    32,766 or more, so the batch's writes stay one statement each, whatever its size.
    """
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    features = connection.features
    features.max_query_params = limit  # this connection's features object only
    try:
        yield
    finally:
        del features.max_query_params  # back to the class's default


# -- stores outside the database ---------------------------------------------------------------


def _one_by_one(tenant_id, items, *, origin, actor) -> BatchResult:
    """Per-item mode on a store that cannot join the transaction: each item is a single
    write (its own transaction, with the store's undo on failure)."""
    results = []
    seen: set[UUID] = set()
    for index, item in enumerate(items):
        result = ItemResult(index, item.op)
        try:
            if item.op != CREATE and item.record_id in seen:
                raise RecordChangeError(
                    "this record is already changed by an earlier item of the batch",
                    code="duplicate_record",
                )
            seen.add(item.record_id)
            done = _single(tenant_id, item, origin=origin, actor=actor)
            result.record, result.change = done.record, done.change
        except RecordChangeError as exc:
            result.error = exc
        results.append(result)
    return BatchResult(results, atomic=False)


def _single(tenant_id, item: BatchItem, *, origin, actor):
    common = {"origin": origin, "actor": actor}
    if item.op == CREATE:
        if item.integration is None or item.integration.tenant_id != tenant_id:
            raise RecordChangeError("no such integration", code="invalid")
        return local_changes.record_create(
            integration=item.integration, entity_type=item.entity_type, data=item.data, **common
        )
    if item.op == UPDATE:
        return local_changes.record_update(
            tenant_id=tenant_id,
            record_id=item.record_id,
            data=item.data,
            replace=item.replace,
            expected_version=item.expected_version,
            **common,
        )
    if item.op == DELETE:
        return local_changes.record_delete(
            tenant_id=tenant_id,
            record_id=item.record_id,
            expected_version=item.expected_version,
            **common,
        )
    raise RecordChangeError(f"unknown operation {item.op!r}", code="invalid")
