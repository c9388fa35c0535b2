"""Fenced updates of outbox rows: write a change's result only while this worker holds it.

A push worker holds its changes by a lease token (``lease_owner``) and status ``running``; a
change whose lease expired and went to another worker must not be overwritten by the slow
first holder. :func:`fenced_update` is that check and write for one change; the push worker's
results are written with :func:`fenced_update_many`, which on PostgreSQL sends a whole group
as ONE ``UPDATE … FROM (VALUES …) RETURNING id`` instead of one ORM ``update()`` per change:
compiling and sending twenty statements was the largest database cost per push
(docs/benchmarks.md, ``outbound``). Other databases, or values that are expressions, take the
per-change path.
"""

from __future__ import annotations

from django.db import connection

from syncing.models import OutboundChange

RUNNING = OutboundChange.Status.RUNNING


def fenced_update(pk, token: str, fields: dict) -> bool:
    """Update one change if ``token`` still holds it; False when the lease was lost."""
    return bool(
        OutboundChange.objects.filter(pk=pk, lease_owner=token, status=RUNNING).update(**fields)
    )


def fenced_update_many(token: str, updates: list[tuple[object, dict]]) -> set:
    """Apply ``(pk, fields)`` updates held by ``token``; return the pks actually updated."""
    if not updates:
        return set()
    names = tuple(updates[0][1])
    bulk = (
        connection.vendor == "postgresql"
        and len(updates) > 1
        and all(tuple(fields) == names for _, fields in updates)
        and not any(
            hasattr(value, "resolve_expression")
            for _, fields in updates
            for value in fields.values()
        )
    )
    if not bulk:
        return {pk for pk, fields in updates if fenced_update(pk, token, fields)}
    return _bulk(token, names, updates)


def _bulk(token: str, names: tuple[str, ...], updates: list[tuple[object, dict]]) -> set:
    meta = OutboundChange._meta
    qn = connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    pk_field = meta.pk
    columns = [qn(pk_field.column), *(qn(f.column) for f in fields)]
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params: list = []
    for pk, values in updates:
        params.append(pk_field.get_db_prep_value(pk, connection))
        params += [f.get_db_prep_save(values[f.name], connection) for f in fields]
    # Each value is cast to its column's type: a VALUES list types its columns from the first
    # row, where a NULL or a string literal would otherwise be taken for text.
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}::{f.db_type(connection)}" for f in fields)
    table = qn(meta.db_table)
    statement = (
        f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - our own columns; values are params
        f"FROM (VALUES {', '.join([row] * len(updates))}) AS v ({', '.join(columns)}) "
        f"WHERE t.{columns[0]} = v.{columns[0]}::{pk_field.db_type(connection)} "
        f"AND t.{qn('lease_owner')} = %s AND t.{qn('status')} = %s "
        f"RETURNING t.{columns[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, token, RUNNING])
        return {row[0] for row in cursor.fetchall()}
