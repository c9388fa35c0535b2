"""The outbox row of a local record change, and the dispatcher's wake-up.

Every writer of a local change needs these, whichever layer it sits in: the record-write
service (``syncing.outbound.local_changes``), the pull's conflicts that local data won
(``syncing.inbound.pipeline``), an operator's conflict resolution (``syncing.services``) and
a dead letter's replay. The wake-up only names the dispatcher's queue entry point
(``syncing.tasks.dispatch_outbound``), so nothing here imports the push side.

Order and coalescing, per record: a change's ``seq`` is the record's version after the
change; the push worker only takes a record's oldest open change. A new update merges into
the record's newest change while that one is still pending and unclaimed (the worker reads
the record's current data when it pushes, so merging the changed-field lists is enough); a
delete cancels pending updates, and cancels a create that was never attempted outright.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from castiel.observability.context import get_correlation_id
from castiel.queue import enqueue
from syncing.models import OutboundChange
from syncing.records.stores.base import StoredRecord

PENDING_PREFIX = "castiel-pending:"
WAKE_KEY = "outbound:wake"
DISPATCHER = "syncing.tasks.dispatch_outbound"
Operation = OutboundChange.Operation
Status = OutboundChange.Status
MERGEABLE = (Operation.CREATE, Operation.UPDATE)  # what a later update merges into
# What queue_changes reads of a record's open changes.
QUEUE_FIELDS = ("id", "record_id", "seq", "status", "lease_owner", "operation", "attempts")
QUEUE_FIELDS += ("fields", "coalesced", "updated_at")


def is_pending_external_id(external_id: str) -> bool:
    """Created locally and not yet at the provider (its id is ``castiel-pending:<uuid>``)."""
    return external_id.startswith(PENDING_PREFIX)


def queue_change(record: StoredRecord, operation: str, fields, *, origin: str, actor: str = ""):
    """Queue a push for a change already written to ``record``: merged into the record's
    newest change while that one is pending and unclaimed, else a new row (call inside the
    record's transaction; the caller wakes the dispatcher after commit). None when a delete
    cancelled a create that never left."""
    latest = (
        OutboundChange.objects.filter(record_id=record.id, status__in=OutboundChange.OPEN)
        .order_by("-seq")
        .first()
    )
    # Merging is a conditional UPDATE (``status = pending AND lease_owner = ''``): if a
    # dispatcher claimed that change a moment ago, the UPDATE matches nothing and a new change
    # is added behind it instead, so nothing is merged into a push already under way.
    claimable = OutboundChange.objects.filter(status=Status.PENDING, lease_owner="")
    if latest is not None and latest.status == Status.PENDING and not latest.lease_owner:
        if operation == Operation.UPDATE and latest.operation in (
            Operation.CREATE,
            Operation.UPDATE,
        ):
            merged = sorted(set(latest.fields) | set(fields))
            if claimable.filter(pk=latest.pk).update(
                fields=merged, coalesced=F("coalesced") + 1, updated_at=timezone.now()
            ):
                latest.refresh_from_db()
                return latest
        elif operation == Operation.DELETE:
            if latest.operation == Operation.CREATE and latest.attempts == 0:
                # Never sent: nothing exists remotely, so nothing is pushed at all.
                if claimable.filter(pk=latest.pk, attempts=0).update(
                    status=Status.SUPERSEDED,
                    status_reason="the record was deleted before it was created remotely",
                    finished_at=timezone.now(),
                ):
                    return None
            elif latest.operation == Operation.UPDATE:
                claimable.filter(pk=latest.pk).update(
                    status=Status.SUPERSEDED,
                    status_reason="superseded by the record's deletion",
                    finished_at=timezone.now(),
                )
    return new_change(record, operation, fields, origin=origin, actor=actor)


def new_change(record: StoredRecord, operation: str, fields, *, origin: str, actor: str = ""):
    """A new outbox row for ``record``, behind its open ones."""
    return OutboundChange.objects.create(**_row_fields(record, operation, fields, origin, actor))


def _row_fields(record: StoredRecord, operation: str, fields, origin: str, actor: str) -> dict:
    return dict(
        tenant_id=record.tenant_id,
        integration_id=record.integration_id,
        entity_type=record.entity_type,
        record_id=record.id,
        external_id="" if is_pending_external_id(record.external_id) else record.external_id,
        operation=operation,
        fields=sorted(fields),
        seq=record.version,
        origin=origin,
        actor=actor[:200],
        correlation_id=get_correlation_id() or "",
    )


def queue_changes(entries, *, origin: str, actor: str = "") -> list:
    """:func:`queue_change` for many records at once, set-based: one read of their open
    changes, one UPDATE for the merges, one per kind of cancellation, one multi-row INSERT
    (COPY on PostgreSQL).

    ``entries``: ``(record, operation, fields)``, each record at most once. Returns the change
    (or None) per entry, in order. Call inside the records' transaction *after* locking the
    records (the pull pipeline's order: records, then their changes). The newest open
    changes are read ``FOR UPDATE`` (PostgreSQL), so a dispatcher's claim either committed
    before (the change is not merged into: a new row goes behind it) or waits for this
    transaction (``SKIP LOCKED``: it claims the change as merged here); SQLite's one writer
    gives the same.
    """
    entries = list(entries)
    if not entries:
        return []
    newest: dict = {}
    open_changes = (
        OutboundChange.objects.filter(
            record_id__in=[record.id for record, _op, _fields in entries],
            status__in=OutboundChange.OPEN,
        )
        .order_by("record_id", "-seq")
        .only(*QUEUE_FIELDS)
    )
    if connection.features.has_select_for_update:
        open_changes = open_changes.select_for_update()
    for change in open_changes:
        newest.setdefault(change.record_id, change)

    results: list = [None] * len(entries)
    merges: list[tuple[OutboundChange, list[str]]] = []
    cancelled_creates, superseded_updates, new_rows = [], [], []
    for index, (record, operation, fields) in enumerate(entries):
        latest = newest.get(record.id)
        claimable = (
            latest is not None and latest.status == Status.PENDING and not latest.lease_owner
        )
        if claimable and operation == Operation.UPDATE and latest.operation in MERGEABLE:
            merges.append((latest, sorted(set(latest.fields) | set(fields))))
            results[index] = latest
            continue
        if claimable and operation == Operation.DELETE:
            if latest.operation == Operation.CREATE and latest.attempts == 0:
                cancelled_creates.append(latest.pk)  # never sent: nothing is pushed at all
                continue
            if latest.operation == Operation.UPDATE:
                superseded_updates.append(latest.pk)
        row = OutboundChange(**_row_fields(record, operation, fields, origin, actor))
        new_rows.append(row)
        results[index] = row
    now = timezone.now()
    if merges:
        _merge(merges, now)
    if cancelled_creates:
        OutboundChange.objects.filter(pk__in=cancelled_creates).update(
            status=Status.SUPERSEDED,
            status_reason="the record was deleted before it was created remotely",
            finished_at=now,
            updated_at=now,
        )
    if superseded_updates:
        OutboundChange.objects.filter(pk__in=superseded_updates).update(
            status=Status.SUPERSEDED,
            status_reason="superseded by the record's deletion",
            finished_at=now,
            updated_at=now,
        )
    if new_rows:
        _insert(new_rows)
    return results


def _insert(rows: list[OutboundChange]) -> None:
    """New outbox rows in one statement. On PostgreSQL a COPY: ``bulk_create`` spent most of a
    1,000-row batch preparing and quoting each of its 30,000 values in Python (the reason
    the record store and the history use COPY too, docs/benchmarks.md)."""
    if connection.vendor != "postgresql":
        OutboundChange.objects.bulk_create(rows)
        return
    fields = OutboundChange._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    is_json = [isinstance(f, models.JSONField) for f in fields]
    attnames = [f.attname for f in fields]
    now = timezone.now()
    table = connection.ops.quote_name(OutboundChange._meta.db_table)
    with connection.cursor() as cursor:
        # psycopg 3's COPY; the column list is ours, the values go through the protocol.
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                row.updated_at = now  # auto_now, as save() would set it
                copy.write_row(
                    [
                        json.dumps(getattr(row, name)) if js else getattr(row, name)
                        for name, js in zip(attnames, is_json, strict=True)
                    ]
                )


def _merge(merges: list[tuple[OutboundChange, list[str]]], now) -> None:
    """The merges in one ``UPDATE … FROM (VALUES …)`` (each row its own field list), still
    conditional on the change being pending and unclaimed (the rows are locked, so it is)."""
    meta = OutboundChange._meta
    table = connection.ops.quote_name(meta.db_table)
    col = {
        name: connection.ops.quote_name(meta.get_field(name).column)
        for name in ("id", "fields", "coalesced", "updated_at", "status", "lease_owner")
    }
    postgres = connection.vendor == "postgresql"
    row = "(%s::uuid, %s::jsonb)" if postgres else "(%s, %s)"
    params: list = []
    for change, fields in merges:
        params += [
            meta.get_field("id").get_db_prep_value(change.pk, connection),
            meta.get_field("fields").get_db_prep_value(fields, connection),
        ]
    statement = (
        f"UPDATE {table} SET {col['fields']} = v.column2, "  # noqa: S608 - our columns; values are params
        f"{col['coalesced']} = {col['coalesced']} + 1, {col['updated_at']} = %s "
        f"FROM (VALUES {', '.join([row] * len(merges))}) AS v "
        f"WHERE {table}.{col['id']} = v.column1 AND {table}.{col['status']} = %s "
        f"AND {table}.{col['lease_owner']} = ''"
    )
    params = [meta.get_field("updated_at").get_db_prep_value(now, connection), *params]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, Status.PENDING])
        if cursor.rowcount != len(merges):  # the rows were locked: only a bug gets here
            raise RuntimeError(f"merged {cursor.rowcount} of {len(merges)} outbox changes")
    for change, fields in merges:
        change.fields, change.coalesced, change.updated_at = fields, change.coalesced + 1, now


# -- the wake-up -------------------------------------------------------------------------------


def request_dispatch() -> None:
    """Wake the dispatcher soon: at most one queued wake-up per debounce window.

    The dispatcher clears the flag *before* it looks for work, so a change committed after
    the flag was cleared sends a new wake-up and a change committed before is seen by that
    scan: no change waits for the minute tick unless the cache or broker failed. The flag is
    set only once the change has committed: a rolled-back change must not hold back the
    wake-ups of others.
    """
    transaction.on_commit(_wake_dispatcher)


def wake_after_commit() -> None:
    """:func:`request_dispatch` once the caller's transaction commits (looked up when called,
    so a test that replaces ``request_dispatch`` sees every wake-up)."""
    transaction.on_commit(lambda: request_dispatch())


def _wake_dispatcher() -> None:
    try:
        first = cache.add(
            WAKE_KEY, 1, timeout=max(1, int(settings.CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS))
        )
    except Exception:  # the cache is an optimisation here, never a reason to lose a wake-up
        first = None
    if first is not False:
        enqueue(DISPATCHER, kind="outbound")
