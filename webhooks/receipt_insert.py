"""The receiver's one write: INSERT a :class:`WebhookEvent`, as cheaply as PostgreSQL allows.

Every accepted delivery pays for this insert before its 2xx, so on PostgreSQL it skips two
costs ``Model.save()`` pays on every call (measured in-process per 13.5 kB GitHub delivery:
docs/benchmarks.md, "Why some code is hand-written"):

* building a model instance (``Model.__init__`` sets and defaults all 35 fields) and
  preparing every column: a receipt is a dict of the 20 columns the receiver knows
  (``RECEIPT_FIELDS``), and the other 15 — filled later by processing — are left to their
  database defaults (``db_default`` on the model, the same values as ``default``). Under load
  the instance and the 35 preparations were a quarter of the receiver view's CPU
  (docs/benchmarks.md, "Session 9");
* compiling the same ``INSERT`` again: the statement is compiled once per process by
  Django's own compiler, and only the values are prepared per event, with the same
  ``get_db_prep_save`` calls the compiler makes;
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
logging and execute wrappers see it), and the row is the one ``save()`` of a model built from
the same values would have written — tests/webhooks/test_receipt_insert.py reads both back
column by column. Other databases use ``save()``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    models,
)
from django.db.models.sql import InsertQuery

from webhooks.models import WebhookBodySeen, WebhookEvent

BODY_SEEN_CONSTRAINT = "webhook_body_seen_unique"


class BodySeenConflict(Exception):
    """The body's hash is claimed already (a replay, or a row past the window): nothing was
    stored, the event neither."""


# The columns a receipt writes; every other column of WebhookEvent takes its database default.
RECEIPT_FIELDS = (
    "id", "tenant_id", "registration_id", "outcome", "reason", "http_status", "status",
    "dedupe_key", "duplicate_of_id", "method", "query_string", "headers", "body", "body_size",
    "content_type", "remote_addr", "correlation_id", "matched_secret", "received_at",
    "receive_ms",
)  # fmt: skip
_RECEIPT_KEYS = frozenset(RECEIPT_FIELDS)


# Django's own field classes (exactly these: a subclass may prepare values its own way, an
# encrypting one for instance) whose ``get_db_prep_save`` on PostgreSQL returns a value of
# these types, or None, unchanged: CharField and TextField return a str as it is (a str
# subclass too, such as a TextChoices member), FloatField a float, UUIDField a UUID (native
# on PostgreSQL), DateTimeField an aware datetime (``adapt_datetimefield_value`` passes it
# on), a ForeignKey its target's. An int for an integer field takes the last step of that
# path only, ``adapt_integerfield_value`` (psycopg's ``Int2`` or ``Int4``: the parameter's
# type stays the column's). Everything else goes through ``get_db_prep_save`` as before
# (JSON, binary and IP address values are wrapped for psycopg; a naive datetime is made
# aware). Preparing the 20 columns the general way cost ~72 µs per delivery in one process,
# this way ~32 (docs/benchmarks.md, "Session 13").
_PASSED_AS_IS = {
    models.CharField: str,
    models.TextField: str,
    models.FloatField: float,
    models.UUIDField: uuid.UUID,
    models.DateTimeField: datetime,
}
_INTEGERS = frozenset(
    (
        models.IntegerField,
        models.SmallIntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.PositiveBigIntegerField,
    )
)


def _prepared(field):
    """``field.get_db_prep_save``, skipped for the values it would return unchanged."""
    prepare = field.get_db_prep_save
    if type(field) in _INTEGERS:
        internal_type = field.get_internal_type()

        def prepare_int(value, db):
            if type(value) is int:
                return db.ops.adapt_integerfield_value(value, internal_type)
            return prepare(value, db)

        return prepare_int
    if field.is_relation and type(field) is not models.ForeignKey:
        return prepare
    kind = _PASSED_AS_IS.get(type(field.target_field if field.is_relation else field))
    if kind is str:

        def prepare_str(value, db):
            return value if value is None or isinstance(value, str) else prepare(value, db)

        return prepare_str
    if kind is datetime:

        def prepare_datetime(value, db):
            if value is None or (type(value) is datetime and value.tzinfo is not None):
                return value
            return prepare(value, db)

        return prepare_datetime
    if kind is not None:

        def prepare_plain(value, db):
            return value if value is None or type(value) is kind else prepare(value, db)

        return prepare_plain
    return prepare


@cache
def _compiled() -> tuple[str, tuple]:
    by_attname = {field.attname: field for field in WebhookEvent._meta.local_concrete_fields}
    fields = tuple(by_attname[name] for name in RECEIPT_FIELDS)
    query = InsertQuery(WebhookEvent)
    query.insert_values(fields, [WebhookEvent()])
    [(sql, _params)] = query.get_compiler(connection=connection).as_sql()
    if connection.vendor != "postgresql":  # what each preparer passes on as is: PostgreSQL's
        return sql, tuple(field.get_db_prep_save for field in fields)
    return sql, tuple(_prepared(field) for field in fields)


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
    """Django's own cursor wrapper around a server-binding psycopg cursor, kept with its
    connection for the next receipt.

    The same steps as ``BaseDatabaseWrapper._cursor()`` (connect, wrap) but the health check
    (see the module docstring), with the cursor class Django uses itself when
    ``OPTIONS["server_side_binding"]`` is on — not turned on for every query because some of
    Django's SQL does not support it. The psycopg cursor is made once per connection, not
    per receipt: making one (and its adapters map) cost ~12 µs a delivery, and psycopg keeps
    the parameters' dumpers of a cursor's last statement only while the cursor lives.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.ensure_connection()
    kept = getattr(db, "_castiel_receipt_cursor", None)
    if kept is None or kept[0] is not db.connection or kept[1].closed:
        with db.wrap_database_errors:
            kept = (db.connection, ServerBindingCursor(db.connection))
        db._castiel_receipt_cursor = kept
    return db._prepare_cursor(kept[1])


def insert_event(values: dict, *, body_seen: tuple[str, datetime] | None = None) -> None:
    """INSERT the event whose columns are ``values`` (exactly ``RECEIPT_FIELDS``, by attname;
    raises ``django.db.IntegrityError`` on a dedupe conflict).

    ``body_seen`` (PostgreSQL only): the body's ``(sha256, seen_at)`` claimed in the same
    statement; :class:`BodySeenConflict` when it is claimed already.
    """
    if values.keys() != _RECEIPT_KEYS:
        raise ValueError(f"a receipt has exactly the columns {RECEIPT_FIELDS}")
    # The connection itself, not django.db.connection: that proxy finds it anew (a context-
    # local lookup) on every attribute read.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        assert body_seen is None, "the body claim in one statement needs PostgreSQL"
        WebhookEvent(**values).save(force_insert=True)
        return
    sql, preparers = _compiled()
    columns = zip(RECEIPT_FIELDS, preparers, strict=True)
    params = [prepare(values[name], db) for name, prepare in columns]
    if body_seen is not None:
        sql = _compiled_with_body()
        digest, seen_at = body_seen
        seen = WebhookBodySeen._meta.get_field("seen_at").get_db_prep_save(seen_at, db)
        params += [values["registration_id"], digest, values["id"], seen]
    try:
        _execute_once_more_if_dropped(db, sql, params)
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        if body_seen is not None and getattr(diag, "constraint_name", "") == BODY_SEEN_CONSTRAINT:
            raise BodySeenConflict(values["registration_id"]) from None
        raise


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
        _server_binding_cursor(db).execute(sql, params)
    except (OperationalError, InterfaceError):
        if not checkable or db.is_usable():
            raise  # not a dropped connection: a real failure
        db.close()
        _server_binding_cursor(db).execute(sql, params)
    # This request's connection is known to work now, as after Django's check.
    db.health_check_done = True
