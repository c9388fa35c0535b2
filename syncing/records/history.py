"""Per-record change history: which run, webhook, API call or operator changed what.

The writers are called by the code that changes records, inside the same transaction as the
change (so a rolled-back change leaves no history, and a committed one always has it):

* :func:`page_written` — the pull pipeline, once per page (one bulk INSERT), and the webhook
  follow-ups that run a record through the same pipeline;
* :func:`local_change` — local edits through the outbox (API, admin, rules) and conflict
  resolutions; :func:`local_changes` — a batch of them (``syncing.outbound.batch_changes``),
  in one statement;
* :func:`deleted` — the webhook follow-up that deletes a record;
* :func:`removed` — records deleted in bulk: a full refresh's soft deletes of what it did not
  see (once per run), and duplicates the push found and removed;
* :func:`written_back` — the push worker, once per group of results, for records whose data
  became the provider's copy of what was pushed (a provider that normalises an e-mail
  address, or adds its own fields to a created record), and the push's "remote wins" check
  (through :func:`local_change`, origin ``push``).

Only changes to what a user sees are recorded: a record's data, its deletion or its return.
Bookkeeping writes (the base moving on an echo, a new checkpoint, match keys) are not.

These rows are also the tenant's **change feed** (:mod:`syncing.records.feed`). On
PostgreSQL every statement stamps its rows with a feed key: the writing transaction's id
(``pg_current_xact_id()``), raised to the newest key of the tenants it writes for — read in
the same statement after the record writes (and their row locks), so a change to a record
always gets a key at least as large as the committed change before it. docs/sync.md,
"Change feed", has the reasoning; SQLite (one writer at a time) needs no key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from castiel.db import overlap
from castiel.observability.context import get_correlation_id
from syncing.models import ChangeFeedPruned, RecordChange
from syncing.records.diff import changed_fields

Action = RecordChange.Action
Source = RecordChange.Source

# How long history is kept (days); pruned by the "record-history-prune" schedule.
PRUNE_BATCH = 10_000


COLUMNS = (
    "tenant_id",
    "record_id",
    "integration_id",
    "entity_type",
    "external_id",
    "action",
    "fields",
    "source",
    "source_id",
    "actor",
    "correlation_id",
    "at",
    "version",
)


def _values(record, action: str, fields, source: str, source_id, actor, correlation_id, now):
    """One history row as a tuple in ``COLUMNS`` order (no model instance: the pipeline
    writes one per changed record, and building model instances cost as much as the SQL)."""
    return (
        record.tenant_id,
        record.id,
        record.integration_id,
        record.entity_type,
        record.external_id[:255],
        action,
        list(fields),
        source,
        str(source_id or "")[:64],
        (actor or "")[:200],
        correlation_id,
        now,
        getattr(record, "version", 0) or 0,
    )


def classify(before, after) -> tuple[str, list[str]] | None:
    """(action, changed fields) for a record written over ``before`` (None: nothing a user
    would see changed — only bookkeeping such as the synced base)."""
    if before is None:
        return Action.CREATED, []
    if after.deleted_at is not None and before.deleted_at is None:
        return Action.DELETED, []
    if after.deleted_at is None and before.deleted_at is not None:
        return Action.RESTORED, changed_fields(before.data, after.data)
    fields = changed_fields(before.data, after.data)
    return (Action.UPDATED, fields) if fields else None


def page_written(pipeline, decisions: Iterable, creates: list, updates: list) -> None:
    """The pipeline wrote ``creates`` and ``updates`` for this page: one statement."""
    if not creates and not updates:
        return
    before = {d.existing.id: d.existing for d in decisions if d.existing is not None}
    source, source_id = pipeline.history_source
    correlation_id, now = _correlation_id(), timezone.now()
    created = None
    rows = []
    if creates and connection.vendor == "postgresql":
        # A page's creates share their scope: their history rows are built by the database
        # from the ids, external ids and versions, not sent row by row.
        created = _Created.of(creates)
    if created is None:
        rows = [
            _values(r, Action.CREATED, (), source, source_id, "", correlation_id, now)
            for r in creates
        ]
    for record in updates:
        change = classify(before.get(record.id), record)
        if change is not None:
            rows.append(_values(record, *change, source, source_id, "", correlation_id, now))
    if rows or created:
        _insert(rows, created=created, common=(source, source_id, correlation_id, now))


class _Created(NamedTuple):
    """New records of one scope, whose creation to record."""

    tenant_id: object
    integration_id: object
    entity_type: str
    ids: list
    external_ids: list
    versions: list

    @classmethod
    def of(cls, records: list) -> _Created | None:
        """None when the records do not share one scope (then they go row by row)."""
        first = records[0]
        scope = (first.tenant_id, first.integration_id, first.entity_type)
        if any((r.tenant_id, r.integration_id, r.entity_type) != scope for r in records):
            return None
        return cls(
            *scope,
            [r.id for r in records],
            [r.external_id[:255] for r in records],
            [getattr(r, "version", 0) or 0 for r in records],
        )


def _insert(rows: list[tuple], *, created: _Created | None = None, common=()) -> None:
    """One page's history in one statement (two with ``created``). On PostgreSQL a COPY: the
    pipeline's hot path writes a row per changed record, and COPY takes a fraction of
    ``bulk_create``'s time for a 1,000-row page (docs/benchmarks.md, "Why some code is
    hand-written") — preceded by the one-row read of the page's feed key. ``created`` (on
    PostgreSQL only): new records of one scope, whose "created" rows — ``common`` is their
    (source, source_id, correlation_id, at) — are written by one ``INSERT … SELECT`` from
    arrays of their ids, external ids and versions, in the order given, before ``rows``."""
    if connection.vendor != "postgresql":
        if len(rows) == 1:
            _model(rows[0]).save(force_insert=True)
        else:
            RecordChange.objects.bulk_create([_model(r) for r in rows])
        return
    table = connection.ops.quote_name(RecordChange._meta.db_table)
    fields = COLUMNS.index("fields")
    tenant_ids = {row[0] for row in rows} | ({created.tenant_id} if created else set())
    with connection.cursor() as cursor:
        key = _feed_key(cursor, table, tenant_ids)
        if created:
            source, source_id, correlation_id, now = common
            # The page's last statement when nothing follows it (a first load's page): sent
            # with the page's foreign-key checks without waiting, so the worker's next page
            # overlaps with them (castiel/db/overlap.py).
            with overlap.sent_ahead(check_constraints=True) if not rows else nullcontext():
                cursor.execute(
                    _CREATED.format(table=table),
                    [
                        created.tenant_id,
                        created.integration_id,
                        created.entity_type,
                        source,
                        str(source_id or "")[:64],
                        correlation_id,
                        now,
                        key,
                        _array(map(str, created.ids)),
                        _array(map(_quoted, created.external_ids)),
                        _array(map(str, created.versions)),
                    ],
                )
        if not rows:
            return
        # psycopg 3's COPY; the column list is ours, the values go through the protocol.
        with cursor.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}, txid) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row[:fields], json.dumps(row[fields]), *row[fields + 1 :], key))


# The "created" rows of new records of one scope, in the order given (the feed orders one
# transaction's changes by id): the same values _values() gives a created record. Built from
# arrays, not read back from syncing_record: until the table's statistics catch up with a
# first load, that join scanned the whole table for every page (docs/benchmarks.md).
_CREATED = (
    "INSERT INTO {table} (" + ", ".join(COLUMNS) + ", txid) "  # noqa: S608 - our columns
    "SELECT %s::uuid, page.id, %s::uuid, %s, page.external_id, "
    f"'{Action.CREATED.value}', '[]'::jsonb, %s, %s, '', %s, %s, page.version, %s "
    "FROM unnest(%s::uuid[], %s::text[], %s::integer[]) "
    "WITH ORDINALITY AS page(id, external_id, version, position) ORDER BY page.position"
)


def _array(elements) -> str:
    """A PostgreSQL array literal of already formatted elements: one string for psycopg to
    quote, instead of its per-element array dumper (a tenth of a page's CPU in the worker)."""
    return "{" + ",".join(elements) + "}"


def _quoted(text: str) -> str:
    """An array element holding any text: double-quoted, backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _feed_key(cursor, table: str, tenant_ids) -> int:
    """This transaction's feed key (PostgreSQL): its own transaction id, or the newest key
    already committed for these tenants if that is larger.

    Any key at least the writer's own transaction id keeps the feed exact (a reader serves
    only keys below the oldest transaction still running). Taking the tenants' newest key
    too orders a record's changes by commit: this statement runs after the record writes,
    so a change that had to wait for another transaction's lock on the record sees that
    transaction's committed key here, and sorts after it. One index probe per tenant
    (``recordchange_feed``, backwards)."""
    statement = (
        "SELECT GREATEST(pg_current_xact_id()::text::bigint, COALESCE(MAX(newest.txid), 0)) "  # noqa: S608 - our table
        "FROM unnest(%s::uuid[]) AS t(id) CROSS JOIN LATERAL "
        f"(SELECT MAX(c.txid) AS txid FROM {table} c WHERE c.tenant_id = t.id) AS newest"
    )
    cursor.execute(statement, [sorted(tenant_ids, key=str)])
    return cursor.fetchone()[0]


def _model(row: tuple) -> RecordChange:
    return RecordChange(**dict(zip(COLUMNS, row, strict=True)))


def _correlation_id() -> str:
    return (get_correlation_id() or "")[:128]


def local_change(record, action: str, fields, *, origin: str, actor: str = "", source_id=""):
    """A local change (outbox service or conflict resolution) written to ``record``."""
    source = origin if origin in Source.values else Source.SERVICE
    row = _values(
        record, action, sorted(fields), source, source_id, actor, _correlation_id(), timezone.now()
    )
    _insert([row])


def local_changes(entries: Iterable[tuple], *, origin: str, actor: str = "") -> None:
    """Many local changes written together (a batch write): ``(record, action, fields,
    source_id)`` each, one statement (:func:`_insert`) — so the whole batch shares one feed
    key, taken after the batch's record writes, like a pull page's."""
    source = origin if origin in Source.values else Source.SERVICE
    correlation_id, now = _correlation_id(), timezone.now()
    rows = [
        _values(record, action, sorted(fields), source, source_id, actor, correlation_id, now)
        for record, action, fields, source_id in entries
    ]
    if rows:
        _insert(rows)


def deleted(record, *, source: str, source_id="") -> None:
    """``record`` (as written: deleted, its new version) was deleted by ``source``."""
    removed([record], source=source, source_id=source_id)


def removed(records: Iterable, *, source: str, source_id="") -> None:
    """Records deleted (soft, or for good) in one go: one statement. Each needs the record's
    identity (tenant_id, id, integration_id, entity_type, external_id) and its version."""
    correlation_id, now = _correlation_id(), timezone.now()
    rows = [
        _values(record, Action.DELETED, (), source, source_id, "", correlation_id, now)
        for record in records
    ]
    if rows:
        _insert(rows)


def owed(entries: Iterable[tuple]) -> None:
    """``(record, intent)`` per history row a store outside the transaction was owed
    (syncing/records/history_repair.py): one statement, the row as the intent describes it."""
    correlation_id, now = _correlation_id(), timezone.now()
    rows = [
        _values(
            record,
            intent.get("action") or Action.UPDATED,
            intent.get("fields") or (),
            intent.get("source") or "run",
            intent.get("source_id") or "",
            "",
            correlation_id,
            now,
        )
        for record, intent in entries
    ]
    if rows:
        _insert(rows)


def written_back(entries: Iterable[tuple]) -> None:
    """``(record, fields, change_id)`` per record the push result changed: one statement."""
    correlation_id, now = _correlation_id(), timezone.now()
    rows = [
        _values(
            # The write-back moved the record one version on (RecordStore.mark_pushed).
            _Versioned(record, record.version + 1),
            Action.UPDATED,
            sorted(fields),
            Source.PUSH,
            change_id,
            "",
            correlation_id,
            now,
        )
        for record, fields, change_id in entries
    ]
    if rows:
        _insert(rows)


class _Versioned:
    """``record`` seen with another version."""

    def __init__(self, record, version: int):
        self._record, self.version = record, version

    def __getattr__(self, name):
        return getattr(self._record, name)


# -- reads -------------------------------------------------------------------------------------


def for_record(record_id, *, limit: int = 50) -> list[RecordChange]:
    return list(RecordChange.objects.filter(record_id=record_id).order_by("-at", "-id")[:limit])


# -- retention ---------------------------------------------------------------------------------


def prune(*, now=None, batch: int = PRUNE_BATCH) -> int:
    """Delete history older than ``CASTIEL_RECORD_HISTORY_RETENTION_DAYS`` (default 90), in
    batches taken from the oldest ids (ids grow with time, so the scan stops early), each
    in a short transaction of its own.

    The history is also the change feed: each batch first raises the prune mark
    (:class:`~syncing.models.ChangeFeedPruned`) to the largest feed position it deletes, in
    the same transaction, so a feed cursor below a deleted change is answered 410."""
    days = settings.CASTIEL_RECORD_HISTORY_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    total = 0
    while True:
        rows = list(
            RecordChange.objects.filter(at__lt=cutoff)
            .order_by("id")
            .values_list("txid", "id")[:batch]
        )
        if not rows:
            return total
        with transaction.atomic():
            _raise_prune_mark(max(rows))
            total += RecordChange.objects.filter(id__in=[pk for _txid, pk in rows]).delete()[0]


def _raise_prune_mark(position: tuple[int, int]) -> None:
    txid, change_id = position
    ChangeFeedPruned.objects.get_or_create(id=1)
    ChangeFeedPruned.objects.filter(
        Q(txid__lt=txid) | Q(txid=txid, change_id__lt=change_id), id=1
    ).update(txid=txid, change_id=change_id, pruned_at=timezone.now())
