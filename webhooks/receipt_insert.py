"""The receiver's one write: INSERT a :class:`WebhookEvent`, as cheaply as PostgreSQL allows.

Every accepted delivery pays for this insert before its 2xx, so on PostgreSQL it skips two
costs ``Model.save()`` pays on every call (measured in-process per 13.5 kB GitHub delivery:
docs/benchmarks.md, "Why some code is hand-written"):

* compiling the same 36-column ``INSERT`` again: the statement is compiled once per
  process by Django's own compiler, and only the values are prepared per event, with the same
  ``pre_save`` / ``get_db_prep_save`` calls the compiler makes;
* client-side binding, psycopg's default in Django, which escapes the raw body into the SQL
  text: this statement is sent with server-side binding, so the body
  travels as binary bytea, unescaped.

A scheme that signs only the body (GitHub) also claims the body's hash
(``WebhookBodySeen``): on PostgreSQL that row goes in the same statement as the event (a
data-modifying CTE, still one autocommitted round trip), not in a transaction of its own —
that cost a third of the receiver's throughput (docs/benchmarks.md).

It also skips the connection health check Django makes before a request's first query
(``CONN_HEALTH_CHECKS``: a ``SELECT 1`` round trip — for the receiver, whose only query this
is, as long as the INSERT itself). Instead the INSERT is tried on the connection as it is,
and if the server dropped it, the connection is closed and the INSERT sent once more on a
fresh one — the same outcome the check gives, paid only when it happens. Sent twice is safe:
an INSERT whose answer was lost left its row, and the second one stops at the dedupe key (or
the body's claim), so the delivery is reported as the duplicate it is.

The cursor is still Django's wrapper (database errors become ``django.db`` exceptions, query
logging and execute wrappers see it), and the row is the one ``save()`` would have written —
tests/webhooks/test_receipt_insert.py reads both back column by column. Other databases use
``save()``.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
)
from django.db.models.sql import InsertQuery

from webhooks.models import WebhookBodySeen, WebhookEvent

BODY_SEEN_CONSTRAINT = "webhook_body_seen_unique"


class BodySeenConflict(Exception):
    """The body's hash is claimed already (a replay, or a row past the window): nothing was
    stored, the event neither."""


@cache
def _compiled() -> tuple[str, tuple]:
    fields = tuple(WebhookEvent._meta.local_concrete_fields)
    query = InsertQuery(WebhookEvent)
    query.insert_values(fields, [WebhookEvent()])
    [(sql, _params)] = query.get_compiler(connection=connection).as_sql()
    return sql, fields


@cache
def _compiled_with_body() -> str:
    sql, _fields = _compiled()
    meta = WebhookBodySeen._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(meta.get_field(name).column)
        for name in ("registration", "body_sha256", "event", "seen_at")
    )
    return (
        f"WITH event AS ({sql}) "  # noqa: S608 - our tables and columns; values are params
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s)"
    )


def _server_binding_cursor(db):
    """Django's own cursor wrapper around a server-binding psycopg cursor.

    The same steps as ``BaseDatabaseWrapper._cursor()`` (connect, wrap) but the health check
    (see the module docstring), with the cursor class Django uses itself when
    ``OPTIONS["server_side_binding"]`` is on — not turned on for every query because some of
    Django's SQL does not support it.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def insert_event(event: WebhookEvent, *, body_seen: tuple[str, datetime] | None = None) -> None:
    """INSERT ``event`` (raises ``django.db.IntegrityError`` on a dedupe conflict).

    ``body_seen`` (PostgreSQL only): the body's ``(sha256, seen_at)`` claimed in the same
    statement; :class:`BodySeenConflict` when it is claimed already.
    """
    # The connection itself, not django.db.connection: that proxy finds it anew (a context-
    # local lookup) on every attribute read, and preparing the 36 values reads it ~100 times.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        assert body_seen is None, "the body claim in one statement needs PostgreSQL"
        event.save(force_insert=True)
        return
    sql, fields = _compiled()
    params = [field.get_db_prep_save(field.pre_save(event, True), db) for field in fields]
    if body_seen is not None:
        sql = _compiled_with_body()
        digest, seen_at = body_seen
        seen = WebhookBodySeen._meta.get_field("seen_at").get_db_prep_save(seen_at, db)
        params += [event.registration_id, digest, event.pk, seen]
    try:
        _execute_once_more_if_dropped(db, sql, params)
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        if body_seen is not None and getattr(diag, "constraint_name", "") == BODY_SEEN_CONSTRAINT:
            raise BodySeenConflict(event.registration_id) from None
        raise
    event._state.adding = False
    event._state.db = db.alias


def _execute_once_more_if_dropped(db, sql: str, params: list) -> None:
    """Execute on the connection as it is; if the server dropped it (what Django's health check
    would have found), close it and execute once more on a fresh one."""
    # Reused and checkable: a connection opened earlier, outside a transaction (inside one, a
    # dropped connection is the transaction's failure, not ours to hide).
    checkable = (
        db.connection is not None
        and db.health_check_enabled
        and not db.health_check_done
        and not db.in_atomic_block
    )
    try:
        with _server_binding_cursor(db) as cursor:
            cursor.execute(sql, params)
    except (OperationalError, InterfaceError):
        if not checkable or db.is_usable():
            raise  # not a dropped connection: a real failure
        db.close()
        with _server_binding_cursor(db) as cursor:
            cursor.execute(sql, params)
    # This request's connection is known to work now, as after Django's check.
    db.health_check_done = True
