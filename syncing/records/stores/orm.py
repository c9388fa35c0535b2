"""The ORM record store (default): the ``Record`` table plus its ``RecordKey`` index.

Writes go inside the page transaction, so records and the cursor checkpoint commit together:
a page's new records in one INSERT (a COPY on PostgreSQL) and its changed ones in one
``INSERT … ON CONFLICT (id) DO UPDATE`` (through COPY and a staging table on PostgreSQL,
``bulk_create`` with ``update_conflicts`` on SQLite). A record the caller read as absent but
that a concurrent writer inserted meanwhile is a unique violation, raised as
``StaleRecordError`` — the caller reads and decides again, as it does for a changed record;
overwriting the other writer's row would lose its data. The pipeline never sends unchanged
records here (the content hash already said "no-op"), so a re-synced page costs one read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Subquery

from syncing.models import Record, RecordKey
from syncing.records import history
from syncing.records.stores import pg_copy, pg_pushed
from syncing.records.stores.base import (
    RecordRef,
    RecordStore,
    Scope,
    StaleRecordError,
    StoredRecord,
)

UPSERT_FIELDS = [
    "external_id",
    "data",
    "content_hash",
    "base_data",
    "base_hash",
    "remote_updated_at",
    "remote_version",
    "local_updated_at",
    "version",
    "deleted_at",
    "last_pushed_hash",
    "match_keys",
    "seen_generation",
    "synced_at",
]


def to_stored(row: Record) -> StoredRecord:
    return StoredRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        integration_id=row.integration_id,
        entity_type=row.entity_type,
        external_id=row.external_id,
        data=row.data,
        content_hash=row.content_hash,
        base_data=row.data if row.base_data is None else row.base_data,
        base_hash=row.base_hash,
        remote_updated_at=row.remote_updated_at,
        remote_version=row.remote_version,
        local_updated_at=row.local_updated_at,
        version=row.version,
        deleted_at=row.deleted_at,
        last_pushed_hash=row.last_pushed_hash,
        match_keys=list(row.match_keys or []),
        seen_generation=row.seen_generation,
        synced_at=row.synced_at,
        created_at=row.created_at,
        etag=str(row.version),
    )


def to_row(record: StoredRecord) -> Record:
    return Record(
        id=record.id,
        tenant_id=record.tenant_id,
        integration_id=record.integration_id,
        entity_type=record.entity_type,
        external_id=record.external_id,
        data=record.data,
        content_hash=record.content_hash,
        base_data=record.stored_base(),
        base_hash=record.base_hash,
        remote_updated_at=record.remote_updated_at,
        remote_version=record.remote_version,
        local_updated_at=record.local_updated_at,
        version=record.version,
        deleted_at=record.deleted_at,
        last_pushed_hash=record.last_pushed_hash,
        match_keys=record.match_keys,
        seen_generation=record.seen_generation,
        synced_at=record.synced_at,
        **({"created_at": record.created_at} if record.created_at else {}),
    )


def _scoped(scope: Scope):
    return Record.objects.filter(
        tenant_id=scope.tenant_id,
        integration_id=scope.integration_id,
        entity_type=scope.entity_type,
    )


class OrmRecordStore(RecordStore):
    name = "orm"

    joins_transaction = True

    def describe(self) -> str:
        from django.db import connection

        return f"orm (the {connection.vendor} database)"

    def atomic(self):
        # Joins the caller's transaction (no savepoint: a failure inside aborts it all anyway).
        return transaction.atomic(savepoint=False)

    def get_many(self, scope, ids, *, lock=False):
        """The scope's records among ``ids``.

        The SQL names the ids only and the scope is checked in Python (:func:`_in_scope`).
        ``tenant_id = … AND integration_id = … AND entity_type = … AND id IN (…)`` lets the
        planner choose between the primary key and ``record_tenant_entity``; while an
        integration's first load runs, the statistics do not know its rows yet (autovacuum
        analyses a minute or more later), the tenant index is estimated at one row, and
        PostgreSQL chose it: every page's lookup read the whole scope (99,000 rows filtered
        away per page at 100,000 records — 45-65 ms per lookup, two per page, growing with the
        scope; docs/benchmarks.md, "Inbound commit path"). ``id = ANY(…)`` alone can only use
        the primary key.
        """
        ids = list(ids)
        if not ids:
            return {}
        if connection.vendor == "postgresql":
            rows = _by_key("id = ANY(%s::uuid[])", [ids], lock=lock)
        else:
            rows = Record.objects.filter(id__in=ids)
            if lock and connection.features.has_select_for_update:
                rows = rows.select_for_update()
        # With lock, local edits to these rows wait for the page to commit (no lost update).
        return {row.id: to_stored(row) for row in rows if _in_scope(row, scope)}

    def find_by_keys(self, scope, keys):
        keys = list(set(keys))
        found: dict[str, set[UUID]] = {}
        if not keys:
            return found
        rows = RecordKey.objects.filter(
            integration_id=scope.integration_id,
            entity_type=scope.entity_type,
            key__in=keys,
            record__deleted_at__isnull=True,
        ).values_list("key", "record_id")
        for key, record_id in rows:
            found.setdefault(key, set()).add(record_id)
        return found

    def find_by_external_ids(self, scope, external_ids, *, lock=False):
        external_ids = list(set(external_ids))
        if not external_ids:
            return {}
        if connection.vendor == "postgresql":
            # One probe of record_unique_external per external id whatever the statistics say
            # (a plain IN list with the scope's columns may read the whole scope: get_many).
            rows = _by_key(
                "(integration_id, entity_type, external_id) IN "
                "(SELECT %s::uuid, %s, unnest(%s::text[]))",
                [scope.integration_id, scope.entity_type, external_ids],
                lock=lock,
            )
        else:
            rows = _scoped(scope).filter(external_id__in=external_ids)
            if lock and connection.features.has_select_for_update:
                rows = rows.select_for_update()
        return {row.external_id: to_stored(row) for row in rows if _in_scope(row, scope)}

    def remove(self, tenant_id, record_id):
        Record.objects.filter(tenant_id=tenant_id, id=record_id).delete()

    def write(self, scope, creates, updates):
        records = [*creates, *updates]
        if not records:
            return
        postgres = connection.vendor == "postgresql"
        try:
            # A savepoint (two round trips a page), so a caller that handles the race keeps
            # a usable transaction.
            with transaction.atomic():
                if creates and postgres:
                    pg_copy.insert(creates)
                elif creates:
                    Record.objects.bulk_create([to_row(r) for r in creates])
                if updates and postgres:
                    pg_copy.upsert(updates, UPSERT_FIELDS)  # the same upsert, through COPY
                elif updates:
                    Record.objects.bulk_create(
                        [to_row(r) for r in updates],
                        update_conflicts=True,
                        unique_fields=["id"],
                        update_fields=UPSERT_FIELDS,
                    )
                self._sync_keys(scope, records)
        except IntegrityError as exc:
            if not _raced(exc, postgres):
                raise
            raise StaleRecordError([r.id for r in records]) from None

    def _sync_keys(self, scope: Scope, records: list[StoredRecord]) -> None:
        keyed = [r for r in records if r.match_keys]
        if not keyed and not any(r.version > 1 for r in records):
            return  # fast path: strategies without keys (external_id) never touch the index
        ids = [r.id for r in records]
        RecordKey.objects.filter(record_id__in=ids).delete()
        RecordKey.objects.bulk_create(
            [
                RecordKey(
                    record_id=r.id,
                    integration_id=scope.integration_id,
                    entity_type=scope.entity_type,
                    key=key[:255],
                )
                for r in keyed
                for key in dict.fromkeys(r.match_keys)
            ],
            ignore_conflicts=True,
        )

    def save_record(self, record):
        """Optimistic single-record replace: the version read must still be current.

        One UPDATE. Match keys are computed by the pull, whose bulk write keeps the key index
        in step; single-record saves (local edits, conflict resolutions, push results) carry
        the stored keys along unchanged, so the index is only rewritten when there are keys.
        """
        expected = int(record.etag) if record.etag else record.version
        new_version = max(record.version, expected + 1)
        fields = {f: getattr(record, f) for f in UPSERT_FIELDS if f != "version"}
        fields["base_data"] = record.stored_base()
        # No savepoint (it costs two round trips); errors are raised outside the block, so a
        # caller that handles StaleRecordError keeps a usable transaction.
        with transaction.atomic(savepoint=False):
            changed = Record.objects.filter(
                id=record.id, tenant_id=record.tenant_id, version=expected
            ).update(version=new_version, **fields)
            if changed and record.match_keys:
                scope = Scope(record.tenant_id, record.integration_id, record.entity_type)
                self._sync_keys(scope, [record.copy(version=new_version)])
        if not changed:
            raise StaleRecordError([record.id])
        return record.copy(version=new_version, etag=str(new_version))

    def mark_pushed(
        self,
        tenant_id,
        record_id,
        pushed_hash,
        *,
        remote=None,
        local_hash=None,
        keep_local=False,
        external_id=None,
        remote_version=None,
        remote_updated_at=None,
    ) -> bool:
        """The push result in ONE conditional UPDATE (see RecordStore.mark_pushed).

        "Take the provider's copy as the data unless a local edit came in meanwhile" is a CASE
        on the stored content hash, evaluated under the row lock: no read, and no retry when
        a local edit races the push result. Written as SQL because it runs once per pushed
        change: building the same statement from ORM expressions (CASE over a JSON value)
        cost more than the rest of the push's database work together. Every SET expression
        sees the row as it was before the UPDATE (standard SQL; PostgreSQL and SQLite agree).
        """
        meta = Record._meta
        col = {f.name: connection.ops.quote_name(f.column) for f in meta.concrete_fields}

        def prep(name, value):
            return meta.get_field(name).get_db_prep_value(value, connection)

        sets = [f"{col['last_pushed_hash']} = %s", f"{col['version']} = {col['version']} + 1"]
        params: list = [pushed_hash]
        if remote is not None:
            sets += [f"{col['base_data']} = %s", f"{col['base_hash']} = %s"]
            params += [prep("base_data", remote), pushed_hash]
            # keep_local: only the base moves; the data keeps edits this push did not send.
            if local_hash is None and not keep_local:
                sets += [f"{col['data']} = %s", f"{col['content_hash']} = %s"]
                params += [prep("data", remote), pushed_hash]
            elif not keep_local:
                for name, value in (("data", prep("data", remote)), ("content_hash", pushed_hash)):
                    sets.append(
                        f"{col[name]} = CASE WHEN {col['content_hash']} = %s "
                        f"THEN %s ELSE {col[name]} END"
                    )
                    params += [local_hash, value]
        if remote_version is not None:
            sets.append(f"{col['remote_version']} = %s")
            params.append(remote_version)
        if remote_updated_at is not None:
            sets.append(f"{col['remote_updated_at']} = %s")
            params.append(prep("remote_updated_at", remote_updated_at))
        if external_id:
            sets.append(f"{col['external_id']} = %s")
            params.append(external_id)
        statement = (
            f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608 - our columns; values are params
            f"WHERE {col['tenant']} = %s AND {col['id']} = %s RETURNING {col['content_hash']}"
        )
        params += [prep("tenant", tenant_id), prep("id", record_id)]
        with transaction.atomic(savepoint=False):
            if external_id:
                # A pull may have stored the provider's copy of this record while the create's
                # answer was outstanding: that duplicate goes, ours keeps its id.
                rows = Record.objects.filter(tenant_id=tenant_id, id=record_id)
                twins = Record.objects.filter(
                    tenant_id=tenant_id,
                    integration_id=Subquery(rows.values("integration_id")[:1]),
                    entity_type=Subquery(rows.values("entity_type")[:1]),
                    external_id=external_id,
                ).exclude(id=record_id)
                gone = _refs(twins)
                if gone:
                    Record.objects.filter(id__in=[ref.id for ref in gone]).delete()
                    history.removed(gone, source=history.Source.PUSH)
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                row = cursor.fetchone()
        if row is None:
            raise KeyError(record_id)
        # The CASE kept a local edit made meanwhile: then the hash is not the pushed one.
        return remote is not None and not keep_local and row[0] == pushed_hash

    def mark_pushed_many(self, pushes):
        """A group of push results in two statements on PostgreSQL (``pg_pushed``); one
        ``mark_pushed`` each elsewhere."""
        if connection.vendor == "postgresql" and len(pushes) > 1:
            with transaction.atomic(savepoint=False):
                return pg_pushed.mark_pushed_many(pushes)
        return super().mark_pushed_many(pushes)

    def mark_seen(self, scope, ids, generation):
        ids = list(ids)
        for start in range(0, len(ids), 500):
            _scoped(scope).filter(id__in=ids[start : start + 500]).exclude(
                seen_generation=generation
            ).update(seen_generation=generation)

    def soft_delete_unseen(self, scope, generation, at: datetime) -> list[RecordRef]:
        unseen = _scoped(scope).filter(deleted_at__isnull=True, seen_generation__lt=generation)
        gone = _refs(unseen)
        ids = [ref.id for ref in gone]
        for start in range(0, len(ids), 500):
            Record.objects.filter(id__in=ids[start : start + 500]).update(
                deleted_at=at, synced_at=at, version=F("version") + 1
            )
        return [_next_version(ref) for ref in gone]

    def get(self, tenant_id, record_id):
        row = Record.objects.filter(tenant_id=tenant_id, id=record_id).first()
        return to_stored(row) if row else None

    def find(self, record_id):
        row = Record.objects.filter(id=record_id).first()
        return to_stored(row) if row else None

    def iter_scope(self, scope, *, include_deleted=False) -> Iterator[StoredRecord]:
        qs = _scoped(scope).order_by("id")
        if not include_deleted:
            qs = qs.filter(deleted_at__isnull=True)
        for row in qs.iterator(chunk_size=2000):
            yield to_stored(row)

    def list_page(
        self,
        tenant_id,
        *,
        integration_id=None,
        entity_type=None,
        include_deleted=False,
        page_size=50,
        continuation=None,
    ):
        qs = Record.objects.filter(tenant_id=tenant_id).order_by("id")
        if integration_id:
            qs = qs.filter(integration_id=integration_id)
        if entity_type:
            qs = qs.filter(entity_type=entity_type)
        if not include_deleted:
            qs = qs.filter(deleted_at__isnull=True)
        if continuation:
            qs = qs.filter(id__gt=_decode_token(continuation))
        rows = list(qs[: page_size + 1])
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = _encode_token(rows[-1].id) if more and rows else None
        return [to_stored(r) for r in rows], token


# A new record that exists after all violates one of these: another writer inserted it.
_RACED = {"syncing_record_pkey", "record_unique_external"}


def _raced(exc: IntegrityError, postgres: bool) -> bool:
    """Whether a write failed because another writer inserted one of its records first."""
    if postgres:
        diag = getattr(exc.__cause__, "diag", None)
        return getattr(diag, "constraint_name", None) in _RACED
    # SQLite names no constraint; this table's only unique ones are the two above.
    return "UNIQUE constraint failed: syncing_record." in str(exc)


def _by_key(condition: str, params: list, *, lock: bool):
    """Records by a key lookup on PostgreSQL, the keys sent as one array parameter (Django's
    ``IN (%s, …)`` of 1,000 values cost more to build and quote than the query took)."""
    table = connection.ops.quote_name(Record._meta.db_table)
    suffix = " FOR UPDATE" if lock else ""
    return Record.objects.raw(f"SELECT * FROM {table} WHERE {condition}{suffix}", params)  # noqa: S608 - our table and conditions


def _in_scope(row: Record, scope: Scope) -> bool:
    """Whether ``row`` belongs to ``scope`` — checked after the lookups by key, whose SQL
    leaves the scope out (the uuid5 ids and the integration already confine them to it)."""
    return (
        str(row.tenant_id) == str(scope.tenant_id)
        and str(row.integration_id) == str(scope.integration_id)
        and row.entity_type == scope.entity_type
    )


def _refs(queryset) -> list[RecordRef]:
    """The records of ``queryset``, locked (PostgreSQL) until the transaction ends."""
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update()
    return [
        RecordRef(*row)
        for row in queryset.order_by("id").values_list(
            "id", "tenant_id", "integration_id", "entity_type", "external_id", "version"
        )
    ]


def _next_version(ref: RecordRef) -> RecordRef:
    return RecordRef(
        ref.id, ref.tenant_id, ref.integration_id, ref.entity_type, ref.external_id, ref.version + 1
    )


def _encode_token(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": str(last_id)}).encode()).decode()


def _decode_token(token: str) -> UUID:
    try:
        return UUID(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("invalid continuation token") from exc
