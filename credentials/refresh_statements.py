"""The refresh lock's statements, as SQL written once per process (``castiel.db.raw_sql``).

Taking the lock and re-reading the credential under it are three of the ten statements of a
refresh. Through the ORM, compiling them cost more CPU than running them, and the proactive
refresh is CPU-bound on the machine it shares with the provider (docs/benchmarks.md, "Why
some code is hand-written"). The SQL is plain and the same on SQLite and PostgreSQL; values
are prepared by the model's fields and rows come back as model instances, so the fields'
converters run as usual.
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from castiel.db import raw_sql
from credentials.models import Credential
from integrations.models import Integration


@cache
def _lease_statements(vendor: str) -> tuple[str, str]:
    qn = connection.ops.quote_name
    meta = Credential._meta
    table, pk = qn(meta.db_table), qn(meta.pk.column)
    until = qn(meta.get_field("refresh_lease_until").column)
    owner = qn(meta.get_field("refresh_lease_owner").column)
    take = (
        f"UPDATE {table} SET {until} = %s, {owner} = %s "  # noqa: S608 - metadata only
        f"WHERE {pk} = %s AND ({until} IS NULL OR {until} < %s)"
    )
    release = (
        f"UPDATE {table} SET {until} = NULL, {owner} = '' "  # noqa: S608 - metadata only
        f"WHERE {pk} = %s AND {owner} = %s"
    )
    return take, release


def load_credential(credential_id, *, for_update: bool = False) -> Credential:
    """The credential with its integration, as ``select_related("integration").get()``
    would return it; ``for_update`` takes the row lock (PostgreSQL, inside a transaction)."""
    sql = raw_sql.select(Credential, "{id} = %s FOR UPDATE" if for_update else "{id} = %s")
    credential = raw_sql.first(Credential, sql, [raw_sql.param(Credential, "id", credential_id)])
    if credential is None:
        raise Credential.DoesNotExist(f"credential {credential_id} does not exist")
    credential.integration = raw_sql.first(
        Integration,
        raw_sql.select(Integration, "{id} = %s"),
        [raw_sql.param(Integration, "id", credential.integration_id)],
    )
    return credential


def _at(value):
    return raw_sql.param(Credential, "refresh_lease_until", value)


def take_lease(credential_id, *, owner: str, until, now) -> bool:
    """Hold the refresh lease until ``until`` if it is free or expired at ``now``."""
    take, _ = _lease_statements(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(
            take, [_at(until), owner, raw_sql.param(Credential, "id", credential_id), _at(now)]
        )
        return cursor.rowcount == 1


def release_lease(credential_id, *, owner: str) -> None:
    _, release = _lease_statements(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(release, [raw_sql.param(Credential, "id", credential_id), owner])
