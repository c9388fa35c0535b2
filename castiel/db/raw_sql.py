"""Hot-path reads as SQL written once per process; rows still built by their model.

The ORM compiles a query again on every call. On paths that run per API request or per
token refresh that compile cost more CPU than the database spent running the query
(measured: docs/benchmarks.md, "Why some code is hand-written").
Callers write the condition with ``{field}`` placeholders — replaced by the quoted column
names, so no value is ever formatted in — and pass the values as parameters; the column
list comes from the model, and rows come back through ``Model.objects.raw``, so every
field's converters run as they would for a queryset.
"""

from __future__ import annotations

from functools import cache

from django.db import connection


@cache
def _select(model, condition: str, vendor: str) -> str:
    qn = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = {f.name: qn(f.column) for f in fields} | {f.attname: qn(f.column) for f in fields}
    listed = ", ".join(qn(f.column) for f in fields)
    table = qn(model._meta.db_table)
    return f"SELECT {listed} FROM {table} WHERE {condition.format(**columns)}"  # noqa: S608


def select(model, condition: str) -> str:
    """``SELECT <every concrete column> FROM <table> WHERE <condition>``, built once.

    ``condition`` names fields as ``{name}`` (e.g. ``"{prefix} = %s AND {revoked_at} IS
    NULL"``) and may go on with ``ORDER BY`` / ``LIMIT`` / ``FOR UPDATE``."""
    return _select(model, condition, connection.vendor)


def first(model, sql: str, params: list):
    """The first row of ``sql`` as a ``model`` instance, or None."""
    return next(iter(model.objects.raw(sql, params)), None)


def param(model, field: str, value):
    """``value`` prepared for ``model.field`` as a query parameter (UUIDs, datetimes …)."""
    return model._meta.get_field(field).get_db_prep_value(value, connection)
