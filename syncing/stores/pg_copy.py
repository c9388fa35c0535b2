"""A page of records upserted through COPY on PostgreSQL (the ORM store's write path).

``bulk_create(update_conflicts=True)`` spends most of a 1,000-record page in Python: Django
prepares every value of every model instance, and psycopg escapes each column array into SQL
text element by element (docs/benchmarks.md, ``inbound``). Here the page is streamed with
``COPY`` (psycopg's C row formatting) into a per-session temporary table and moved into
``syncing_record`` with one ``INSERT … SELECT … ON CONFLICT (id) DO UPDATE`` — the same upsert
``bulk_create`` sends, with the same columns updated. The staging table is created on first
use in each database session (``IF NOT EXISTS``, so a rolled-back creation is simply redone)
and emptied after each page. tests/syncing/test_stores.py runs the store contract on both
paths.
"""

from __future__ import annotations

import json

from django.db import connection
from django.utils import timezone

from syncing.models import Record

STAGE = "castiel_record_stage"
COLUMNS = (
    "id",
    "tenant_id",
    "integration_id",
    "entity_type",
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
    "created_at",
)


def _row(record, now) -> tuple:
    return (
        record.id,
        record.tenant_id,
        record.integration_id,
        record.entity_type,
        record.external_id,
        json.dumps(record.data),
        record.content_hash,
        json.dumps(record.base_data),
        record.base_hash,
        record.remote_updated_at,
        record.remote_version,
        record.local_updated_at,
        record.version,
        record.deleted_at,
        record.last_pushed_hash,
        json.dumps(list(record.match_keys or [])),
        record.seen_generation,
        record.synced_at,
        record.created_at or now,
    )


def upsert(records, update_fields: list[str]) -> None:
    """Insert or update ``records`` (StoredRecord) by id, inside the caller's transaction."""
    table = connection.ops.quote_name(Record._meta.db_table)
    columns = ", ".join(COLUMNS)
    updates = ", ".join(
        f"{Record._meta.get_field(name).column} = EXCLUDED.{Record._meta.get_field(name).column}"
        for name in update_fields
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        # psycopg 3's COPY; the column list is ours, the values go through the protocol.
        with cursor.cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(_row(record, now))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {STAGE} "  # noqa: S608 - our columns
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DELETE FROM {STAGE}")  # noqa: S608 - our staging table
