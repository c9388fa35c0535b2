"""Claims and leases of work rows: who holds a task, an outbox change or an event, until when.

Every unit of work is a row that carries its own holder: a random token (:func:`new_token`)
written by the claim into an *owner* column (``lease_owner`` by default) next to an expiry.
Whoever holds the token may write the row's result; every such write is *fenced* —
``UPDATE … WHERE <owner> = <token>`` — so a worker whose lease expired and was handed on
changes nothing (zero rows: :class:`LeaseLost`). A duplicate or late queue message finds the
token gone and does nothing.

Claims:

* :func:`claim` — pick and lease up to ``limit`` rows of a queryset: on PostgreSQL ONE
  ``UPDATE … WHERE pk IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING pk``, so concurrent
  claimers split the rows instead of waiting for each other; elsewhere (SQLite: no row locks,
  writers serialise) the candidates' pks, then :func:`claim_listed`;
* :func:`claim_listed` — lease the listed rows that are still free: the conditional
  ``UPDATE`` is the claim, then the pks that carry the token;
* :func:`claim_row` — one row by one conditional ``UPDATE`` (a message names its row).

A claim's "free" condition must test the row's own columns on PostgreSQL: a condition
through a relation becomes ``WHERE id IN (SELECT … JOIN …)``, which PostgreSQL does not
re-check after waiting on a concurrent claim's row lock (two workers would win one row).

Hand-tuned claims (the scheduler's, the tenant-fair outbound one) keep their own SQL and use
the token, :class:`LeaseLost` and the fenced writes from here.
"""

from __future__ import annotations

import secrets

from django.db import connection
from django.db.models import QuerySet

OWNER = "lease_owner"


class LeaseLost(Exception):
    """The worker no longer holds the row (its lease expired and was handed on): it must stop
    without writing a result."""


def new_token() -> str:
    """A fresh holder token (one per claim)."""
    return secrets.token_hex(16)


# -- fenced writes ----------------------------------------------------------------------------


def fenced_update(rows: QuerySet, token, fields: dict, *, owner: str = OWNER) -> int:
    """``UPDATE`` the ``rows`` that ``token`` still holds; how many it wrote (0: lease lost).

    ``owner`` is the column naming the holder; a model without a token column may fence on
    a value unique per claim instead (the webhook event's lease expiry)."""
    return rows.filter(**{owner: token}).update(**fields)


def fenced_update_or_raise(
    rows: QuerySet, token, fields: dict, *, owner: str = OWNER, lost: str = "lease lost"
) -> int:
    """:func:`fenced_update`, raising :class:`LeaseLost` (``lost`` its message) when it wrote
    nothing."""
    updated = fenced_update(rows, token, fields, owner=owner)
    if not updated:
        raise LeaseLost(lost)
    return updated


def fenced_update_many(
    model,
    token,
    updates: list[tuple[object, dict]],
    *,
    owner: str = OWNER,
    held: dict | None = None,
) -> set:
    """Apply ``(pk, fields)`` updates to rows held by ``token`` (and matching ``held``, plain
    column values); return the pks actually written.

    On PostgreSQL a group with the same field names and no expressions goes as ONE
    ``UPDATE … FROM (VALUES …) RETURNING pk`` instead of one statement per row: compiling
    and sending twenty statements was the largest database cost per push
    (docs/benchmarks.md, ``outbound``). Otherwise one fenced ``UPDATE`` per row.
    """
    if not updates:
        return set()
    held = held or {}
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
        rows = model._default_manager.filter(**held)
        return {
            pk
            for pk, fields in updates
            if fenced_update(rows.filter(pk=pk), token, fields, owner=owner)
        }
    return _bulk(model, token, names, updates, {owner: token, **held})


def _bulk(model, token, names: tuple[str, ...], updates: list, conditions: dict) -> set:
    meta = model._meta
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
    held = [meta.get_field(name) for name in conditions]
    where = "".join(f" AND t.{qn(f.column)} = %s" for f in held)
    table = qn(meta.db_table)
    statement = (
        f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - our own columns; values are params
        f"FROM (VALUES {', '.join([row] * len(updates))}) AS v ({', '.join(columns)}) "
        f"WHERE t.{columns[0]} = v.{columns[0]}::{pk_field.db_type(connection)}{where} "
        f"RETURNING t.{columns[0]}"
    )
    values = [f.get_db_prep_save(conditions[f.name], connection) for f in held]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, *values])
        return {row[0] for row in cursor.fetchall()}


# -- claims -----------------------------------------------------------------------------------


def claim(
    candidates: QuerySet,
    *,
    token: str,
    limit: int,
    values: dict,
    free: dict,
    owner: str = OWNER,
) -> list:
    """Lease up to ``limit`` of ``candidates`` (in their order) under ``token``, writing
    ``values`` too; the pks leased. Call inside a transaction.

    ``candidates`` selects free rows; ``free`` (the row's own columns) is what the SQLite
    path's ``UPDATE`` checks again. ``values`` are plain values, not expressions.
    """
    model = candidates.model
    if connection.vendor != "postgresql":
        picked = list(candidates.values_list("pk", flat=True)[:limit])
        return claim_listed(model, picked, token=token, values=values, free=free, owner=owner)
    inner = candidates.values("pk")[:limit].select_for_update(skip_locked=True, of=("self",))
    sql, params = inner.query.sql_with_params()
    meta, qn = model._meta, connection.ops.quote_name
    written = {owner: token, **values}
    fields = [meta.get_field(name) for name in written]
    sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    pk = qn(meta.pk.column)
    statement = (
        f"UPDATE {qn(meta.db_table)} SET {sets} "  # noqa: S608 - Django's own SQL and names
        f"WHERE {pk} IN ({sql}) RETURNING {pk}"
    )
    prepared = [f.get_db_prep_save(written[f.name], connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*prepared, *params])
        return [row[0] for row in cursor.fetchall()]


def claim_listed(model, pks, *, token: str, values: dict, free: dict, owner: str = OWNER) -> list:
    """Lease those of ``pks`` that are still ``free`` under ``token``; the pks it holds.

    No row locks: the conditional ``UPDATE`` is the claim (on SQLite the writers serialise;
    on PostgreSQL the ``UPDATE`` re-checks ``free`` on each row it waited for)."""
    rows = model._default_manager
    rows.filter(pk__in=pks, **free).update(**{owner: token}, **values)
    return list(rows.filter(pk__in=pks, **{owner: token}).values_list("pk", flat=True))


def claim_row(rows: QuerySet, token, values: dict, *, owner: str = OWNER) -> bool:
    """Lease the row ``rows`` names if its filter (the "free" condition) still holds: one
    conditional ``UPDATE``, correct on every database. True when this caller got it."""
    return bool(rows.update(**{owner: token}, **values))
