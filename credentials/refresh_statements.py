"""The refresh lock's statements, as SQL written once per process.

Taking the lock and re-reading the credential under it are three of the ten statements of a
refresh. Through the ORM, compiling them cost more CPU than running them (the joined re-read
~0.3 ms of its 0.4 ms on SQLite), and the proactive refresh is CPU-bound on the machine it
shares with the provider (docs/benchmarks.md, ``token_refresh``). The SQL is plain and the
same on SQLite and PostgreSQL; values are prepared by the model's fields and rows come back
as model instances through ``Model.objects.raw``, so the fields' converters run as usual.
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from credentials.models import Credential
from integrations.models import Integration


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns(model) -> str:
    return ", ".join(_qn(f.column) for f in model._meta.concrete_fields)


@cache
def _statements(vendor: str) -> dict[str, str]:
    meta = Credential._meta
    table, pk = _qn(meta.db_table), _qn(meta.pk.column)
    until = _qn(meta.get_field("refresh_lease_until").column)
    owner = _qn(meta.get_field("refresh_lease_owner").column)
    select = f"SELECT {_columns(Credential)} FROM {table} WHERE {pk} = %s"  # noqa: S608
    integration = Integration._meta
    return {
        "select": select,
        "select_for_update": f"{select} FOR UPDATE",
        "integration": (
            f"SELECT {_columns(Integration)} FROM {_qn(integration.db_table)} "  # noqa: S608
            f"WHERE {_qn(integration.pk.column)} = %s"
        ),
        "take": (
            f"UPDATE {table} SET {until} = %s, {owner} = %s "  # noqa: S608 - metadata only
            f"WHERE {pk} = %s AND ({until} IS NULL OR {until} < %s)"
        ),
        "release": (
            f"UPDATE {table} SET {until} = NULL, {owner} = '' "  # noqa: S608 - metadata only
            f"WHERE {pk} = %s AND {owner} = %s"
        ),
    }


def _pk(model, value):
    return model._meta.pk.get_db_prep_value(value, connection)


def _datetime(value):
    return Credential._meta.get_field("refresh_lease_until").get_db_prep_save(value, connection)


def load_credential(credential_id, *, for_update: bool = False) -> Credential:
    """The credential with its integration, as ``select_related("integration").get()``
    would return it; ``for_update`` takes the row lock (PostgreSQL, inside a transaction)."""
    statements = _statements(connection.vendor)
    sql = statements["select_for_update" if for_update else "select"]
    credential = next(iter(Credential.objects.raw(sql, [_pk(Credential, credential_id)])), None)
    if credential is None:
        raise Credential.DoesNotExist(f"credential {credential_id} does not exist")
    integration = next(
        iter(
            Integration.objects.raw(
                statements["integration"], [_pk(Integration, credential.integration_id)]
            )
        )
    )
    credential.integration = integration
    return credential


def take_lease(credential_id, *, owner: str, until, now) -> bool:
    """Hold the refresh lease until ``until`` if it is free or expired at ``now``."""
    with connection.cursor() as cursor:
        cursor.execute(
            _statements(connection.vendor)["take"],
            [_datetime(until), owner, _pk(Credential, credential_id), _datetime(now)],
        )
        return cursor.rowcount == 1


def release_lease(credential_id, *, owner: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _statements(connection.vendor)["release"], [_pk(Credential, credential_id), owner]
        )
