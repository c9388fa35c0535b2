"""The encrypted store's two hot statements, as SQL written once per process.

Every token refresh reads two secrets (the credential's document and the OAuth client
secret) and writes one. Through the ORM each of those statements cost several times more CPU
to compile than to run, and the proactive refresh is CPU-bound on the machine it shares with
the provider (docs/benchmarks.md, "Why some code is hand-written"). So:

* the latest (or a given) version is read with one plain ``SELECT`` (``castiel.db.raw_sql``),
  and the row comes back as a model instance (the fields' own converters run);
* a new version is written with ONE ``INSERT … SELECT MAX(version) + 1 … RETURNING``
  instead of an aggregate and an insert; a writer that loses the race to a version number
  still gets the unique-constraint error and retries, as before.

Values are prepared by the model's fields (``get_db_prep_save``), so SQLite (≥ 3.35, for
``RETURNING``) and PostgreSQL store exactly what ``Model.save()`` would: the contract suite
(tests/credentials/secret_store_contract.py) runs on both databases.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.utils import timezone

from castiel.db import raw_sql
from credentials.models import StoredSecret

_META = StoredSecret._meta
_WRITTEN = ("name", "ciphertext", "tags", "created_at", "expires_on", "not_before")


@cache
def _insert(vendor: str) -> str:
    qn = connection.ops.quote_name
    table = qn(_META.db_table)
    name, version = qn("name"), qn("version")
    written = ", ".join(qn(_META.get_field(f).column) for f in _WRITTEN)
    placeholders = ", ".join(["%s"] * len(_WRITTEN))
    return (
        f"INSERT INTO {table} ({written}, {version}) "  # noqa: S608 - model metadata only
        f"SELECT {placeholders}, COALESCE(MAX({version}), 0) + 1 FROM {table} "
        f"WHERE {name} = %s RETURNING {version}"
    )


def read_row(name: str, version: int | None = None) -> StoredSecret | None:
    """The newest version of ``name`` (or exactly ``version``), or None."""
    if version is None:
        sql = raw_sql.select(StoredSecret, "{name} = %s ORDER BY {version} DESC LIMIT 1")
        return raw_sql.first(StoredSecret, sql, [name])
    sql = raw_sql.select(StoredSecret, "{name} = %s AND {version} = %s")
    return raw_sql.first(StoredSecret, sql, [name, version])


def insert_next_version(name: str, ciphertext: str, *, tags, expires_on, not_before):
    """INSERT version MAX+1 of ``name``; returns the row as written (its id not read back).

    Raises ``django.db.IntegrityError`` when a concurrent writer took that number.
    """
    insert = _insert(connection.vendor)
    row = StoredSecret(
        name=name,
        ciphertext=ciphertext,
        tags=tags or {},
        created_at=timezone.now(),
        expires_on=expires_on,
        not_before=not_before,
    )
    params = [_META.get_field(f).get_db_prep_save(getattr(row, f), connection) for f in _WRITTEN]
    with connection.cursor() as cursor:
        cursor.execute(insert, [*params, name])
        (row.version,) = cursor.fetchone()
    return row
