"""Local changes to records, each written with its outbox row in ONE transaction.

These are the only way Castiel changes a record on behalf of a user or a rule: the REST API,
the admin, webhook-triggered rules and conflict resolutions all call them. Each one writes
the record (through the record store) and an :class:`~syncing.models.OutboundChange` in the
same database transaction — both commit or neither does — and wakes the push workers after
commit (:func:`syncing.records.outbox.request_dispatch`; a lost wake-up is covered by the
minute tick, because the row, not the message, is the work).

Order and coalescing per record: see :mod:`syncing.records.outbox`, which writes the row.

Records created here do not have an external id until the provider gives them one; until
then it is ``castiel-pending:<uuid>`` and the record keeps the id it was created with (the
pull finds it by external id once the push has filled it in: ``syncing.inbound.dedup``).

With the Cosmos DB record store the record cannot join the relational transaction: the
outbox row is written first and the record after it, and if anything fails once the record
is written — the history insert, the commit itself — the record is put back as it was (a
conditional write on what this change wrote, or the removal of a record it created), so a
local change never stays without its outbox row. Only a process killed between the record
write and the commit can still leave one (documented in docs/outbound.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from castiel.observability.logging import get_logger
from syncing.models import OutboundChange
from syncing.records import history, outbox
from syncing.records.diff import changed_fields
from syncing.records.hashing import content_hash, record_id
from syncing.records.outbox import PENDING_PREFIX
from syncing.records.stores import get_store
from syncing.records.stores.base import StaleRecordError, StoredRecord

log = get_logger(__name__)

Operation = OutboundChange.Operation
Status = OutboundChange.Status


class RecordChangeError(ValueError):
    """A local change that cannot be made; ``code`` is stable (the API's error code)."""

    code = "invalid_change"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        if code:
            self.code = code
        if status:
            self.status = status


@dataclass
class LocalChange:
    record: StoredRecord
    change: OutboundChange | None  # None: nothing to push (no field changed, or cancelled)


# -- the services ----------------------------------------------------------------------------


def record_create(
    *,
    integration,
    entity_type: str,
    data: dict,
    origin: str = OutboundChange.Origin.SERVICE,
    actor: str = "",
) -> LocalChange:
    """Create a record locally and queue its creation at the provider."""
    _check_data(data)
    now = timezone.now()
    external_id = f"{PENDING_PREFIX}{uuid.uuid4()}"
    record = StoredRecord(
        id=record_id(integration.tenant_id, integration.pk, entity_type, external_id),
        tenant_id=integration.tenant_id,
        integration_id=integration.pk,
        entity_type=entity_type,
        external_id=external_id,
        data=data,
        content_hash=content_hash(data),
        local_updated_at=now,
        synced_at=now,
        created_at=now,
    )
    store = get_store()
    with written_together(store) as undo:
        change = outbox.new_change(record, Operation.CREATE, list(data), origin=origin, actor=actor)
        record = store.create_record(record)
        undo.append(lambda: store.remove(record.tenant_id, record.id))
        history.local_change(record, "created", [], origin=origin, actor=actor, source_id=change.pk)
    outbox.wake_after_commit()
    return LocalChange(record, change)


def record_update(
    *,
    tenant_id,
    record_id,
    data: dict,
    replace: bool = False,
    expected_version: int | None = None,
    origin: str = OutboundChange.Origin.SERVICE,
    actor: str = "",
) -> LocalChange:
    """Change a record's data (merged into it, or replacing it) and queue the update.

    Only the fields whose value changed are pushed (where the provider allows PATCH).
    ``expected_version``: refuse (409) if the record changed since the caller read it.
    """
    _check_data(data)
    store = get_store()
    with written_together(store) as undo:
        record = _load(store, tenant_id, record_id, expected_version)
        new_data = dict(data) if replace else {**record.data, **data}
        fields = changed_fields(record.data, new_data)
        if not fields:
            return LocalChange(record, None)
        edited = record.copy(
            data=new_data,
            content_hash=content_hash(new_data),
            local_updated_at=timezone.now(),
            version=record.version + 1,
        )
        change = outbox.queue_change(edited, Operation.UPDATE, fields, origin=origin, actor=actor)
        record = _save(store, edited, undo=undo, previous=record)
        history.local_change(
            record, "updated", fields, origin=origin, actor=actor, source_id=_pk(change)
        )
    outbox.wake_after_commit()
    return LocalChange(record, change)


def record_delete(
    *,
    tenant_id,
    record_id,
    expected_version: int | None = None,
    origin: str = OutboundChange.Origin.SERVICE,
    actor: str = "",
) -> LocalChange:
    """Delete a record locally (soft: it stays, marked deleted) and queue the remote delete."""
    store = get_store()
    with written_together(store) as undo:
        record = _load(store, tenant_id, record_id, expected_version)
        now = timezone.now()
        deleted = record.copy(deleted_at=now, local_updated_at=now, version=record.version + 1)
        change = outbox.queue_change(deleted, Operation.DELETE, [], origin=origin, actor=actor)
        record = _save(store, deleted, undo=undo, previous=record)
        history.local_change(
            record, "deleted", [], origin=origin, actor=actor, source_id=_pk(change)
        )
    outbox.wake_after_commit()
    return LocalChange(record, change)


def record_for_external_id(*, integration, entity_type: str, external_id: str):
    """The stored record a provider id names (for rules that know only the provider's id)."""
    from syncing.records.stores.base import Scope

    scope = Scope(integration.tenant_id, integration.pk, entity_type)
    return get_store().find_by_external_ids(scope, [external_id]).get(external_id)


# -- internals -------------------------------------------------------------------------------


def _check_data(data) -> None:
    if not isinstance(data, dict):
        raise RecordChangeError("data must be a JSON object", code="invalid")


def _load(store, tenant_id, record_id, expected_version) -> StoredRecord:
    record = store.get(tenant_id, record_id)
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


@contextmanager
def written_together(store) -> Iterator[list[Callable[[], object]]]:
    """The relational transaction, plus undo steps for a store outside it (Cosmos DB): what
    every writer of a record and its outbox row / history runs in.

    The caller appends an undo step after each record write; they run, newest first, when
    the block fails after the write — the commit included. With the ORM store the rollback
    is the undo and the steps are dropped.
    """
    undo: list[Callable[[], object]] = []
    try:
        with transaction.atomic(), store.atomic():
            yield undo
    except BaseException:
        if not store.joins_transaction:
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # the original failure is what the caller must see
                    log.exception("outbox.undo_failed")
        raise


def _save(store, record: StoredRecord, *, undo: list, previous: StoredRecord) -> StoredRecord:
    try:
        written = store.save_record(record)
    except StaleRecordError:
        # Someone (a pull, another edit) wrote the record since we read it: the whole change,
        # outbox row included, rolls back; the caller may retry on the fresh record.
        raise RecordChangeError(
            "the record changed while it was being edited; try again",
            code="version_mismatch",
            status=409,
        ) from None
    # Back to what it was, only if it is still what this change wrote.
    undo.append(lambda: store.save_record(previous.copy(etag=written.etag)))
    return written


def _pk(change) -> str:
    return str(change.pk) if change is not None else ""
