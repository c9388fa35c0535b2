"""A page of records upserted through COPY on PostgreSQL (the ORM store's write path).

``bulk_create(update_conflicts=True)`` spends most of a 1,000-record page in Python: Django
prepares every value of every model instance, and psycopg escapes each column array into SQL
text element by element (docs/benchmarks.md, ``inbound``). Here the page is streamed with
``COPY`` (psycopg's C row formatting) into a per-session temporary table and moved into
``syncing_record`` with one ``INSERT … SELECT … ON CONFLICT (id) DO UPDATE`` — the same upsert
``bulk_create`` sends, with the same columns updated. The staging table is created on first
use in each database session (``IF NOT EXISTS``, so a rolled-back creation is simply redone)
and emptied after each page. Records the caller knows to be new skip the staging table:
:func:`insert` copies them straight into ``syncing_record`` (a first load's pages are all
creates), and a row that exists after all — a concurrent writer got there first — fails the
statement with a unique violation, which the store turns into ``StaleRecordError`` (the page
is read and decided again). tests/syncing/records/test_stores.py runs the store contract on
both paths.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache

from django.db import connection, models
from django.utils import timezone

from syncing.models import Record

STAGE = "castiel_record_stage"


@cache
def _layout() -> tuple[str, tuple[tuple[str, bool], ...]]:
    """The column list, and per column the StoredRecord attribute and whether it is JSON."""
    fields = Record._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    return columns, tuple((f.attname, isinstance(f, models.JSONField)) for f in fields)


# Columns whose value is usually one object for a whole page (its scope, its sync time).
_PAGE_WIDE = frozenset({"tenant_id", "integration_id", "entity_type", "synced_at", "created_at"})


def _row(record, attributes, now, memo: dict) -> list:
    row = []
    # JSON encoding is the largest Python cost of the COPY (docs/benchmarks.md, "Inbound
    # commit path"): a dict that is there twice is encoded once.
    encoded: list[tuple[object, str]] = []
    for attname, is_json in attributes:
        value = getattr(record, attname)
        if attname == "base_data":
            value = record.stored_base()  # NULL: the same as the data
            if value is None:
                row.append(None)
                continue
        elif attname == "data" and record.data_json is not None:
            encoded.append((value, record.data_json))  # the pipeline's canonical JSON of it
        if is_json:
            # An empty list (a record's usual match keys) is the same text every time.
            text = "[]" if value == [] else None
            text = text or next((done for prior, done in encoded if prior is value), None)
            if text is None:
                text = json.dumps(value)
                encoded.append((value, text))
            value = text
        elif value is None and attname == "created_at":
            value = now  # the model's default, as bulk_create would apply it
        if attname in _PAGE_WIDE:
            # Formatted once for the page, not per row (psycopg's datetime and UUID dumpers
            # cost ~1 and ~0.3 µs a value: a third of the COPY's formatting).
            last = memo.get(attname)
            if last is not None and last[0] is value:
                row.append(last[1])
                continue
            memo[attname] = (value, _text(value))
            value = memo[attname][1]
        elif isinstance(value, datetime):
            value = value.isoformat()  # ISO 8601 with its offset: the same instant, sooner
        row.append(value)
    return row


def _text(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return None if value is None else str(value)


@cache
def _set_clause(update_fields: tuple[str, ...]) -> str:
    columns = [connection.ops.quote_name(Record._meta.get_field(n).column) for n in update_fields]
    return ", ".join(f"{column} = EXCLUDED.{column}" for column in columns)


def insert(records) -> None:
    """Insert ``records`` (StoredRecord), none of which may exist yet, inside the caller's
    transaction: one COPY into the table (a unique violation if one does)."""
    with connection.cursor() as cursor:
        _copy(cursor, connection.ops.quote_name(Record._meta.db_table), records)


def upsert(records, update_fields: list[str]) -> None:
    """Insert or update ``records`` (StoredRecord) by id, inside the caller's transaction."""
    table = connection.ops.quote_name(Record._meta.db_table)
    columns, _ = _layout()
    updates = _set_clause(tuple(update_fields))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        _copy(cursor, STAGE, records)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {STAGE} "  # noqa: S608 - our columns
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DELETE FROM {STAGE}")  # noqa: S608 - our staging table


def _copy(cursor, table: str, records) -> None:
    columns, attributes = _layout()
    now = timezone.now()
    memo: dict = {}
    # psycopg 3's COPY; the column list is ours, the values go through the protocol. Django's
    # wrapper turns psycopg's errors into django.db's, as cursor.execute would.
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for record in records:
            copy.write_row(_row(record, attributes, now, memo))
