"""The change feed: a tenant's record changes (the history rows), in an order a reader can
follow without ever skipping a change that commits late.

A position is ``(txid, id)`` of a :class:`~syncing.models.RecordChange`; the feed is every
change in position order. A reader holds the position of the last change it was given and
asks for the ones after it — but only up to the **horizon**, the position below which no
change can still appear:

* **PostgreSQL.** Ids come from a sequence when a row is inserted, and transactions commit in
  another order: a reader that had moved past id 120 would never see id 118 committing a
  second later. So each history statement stamps its rows with a key — the writing
  transaction's id (``pg_current_xact_id()``), or the tenant's newest key if larger
  (:mod:`syncing.records.history`). A transaction id is assigned before its rows are written
  and grows with time, so every change not yet visible belongs to a transaction still running
  (or not started) and has a key ≥ ``pg_snapshot_xmin(pg_current_snapshot())``, the oldest
  transaction id still running. The horizon is "key below that xmin": everything under it is
  final (committed, or rolled back and never seen), and every change that commits later sorts
  above it.
* **SQLite** has one writer at a time, whose ids are larger than every committed one (the
  table is AUTOINCREMENT, so ids are never reused): the horizon is the largest id committed.

Reads are keyset reads of the ``recordchange_feed`` index (tenant, txid, id). A reader that
reached the horizon gets the horizon itself as its next position (nothing it has not seen is
below it), so an idle reader's cursor keeps moving and does not age out of the retention.
Retention deletes old history in batches and raises a prune mark (``ChangeFeedPruned``): a
cursor below it may have missed a deleted change and is refused (410, resynchronise).

The feed is read by ``GET /api/v1/records/changes/`` (``syncing.api.views``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from syncing.models import ChangeFeedPruned, RecordChange
from syncing.records.stores import cursors

MAX_ID = 2**63 - 1
SALT = "castiel.records.changes"
# A filtered read examines at most this many of the tenant's changes (index entries) per page;
# if none of them matched it answers an empty page that moves the cursor past them.
SCAN_LIMIT = 10_000


@dataclass(frozen=True, order=True)
class Position:
    txid: int
    id: int


START = Position(-1, -1)  # before every change


@dataclass(frozen=True)
class Filters:
    integration_id: UUID | None = None
    entity_type: str | None = None
    run_id: UUID | None = None  # only the changes this sync run wrote

    def key(self) -> list[str]:
        key = [str(self.integration_id or ""), self.entity_type or ""]
        return [*key, str(self.run_id)] if self.run_id else key

    def __bool__(self) -> bool:
        return bool(self.integration_id or self.entity_type or self.run_id)


@dataclass
class Page:
    changes: list[Change]
    next: Position
    has_more: bool


class CursorError(ValueError):
    """Not a cursor of this feed for this tenant and these filters."""


class CursorExpired(Exception):
    """Changes after this cursor may have been pruned (retention): resynchronise."""


# -- cursors ------------------------------------------------------------------------------


def encode(position: Position, tenant_id, filters: Filters) -> str:
    """An opaque cursor: the position, signed and bound to the tenant and the filters."""
    return cursors.sign(
        {"p": [position.txid, position.id], "f": filters.key()}, tenant_id, salt=SALT
    )


def decode(token: str, tenant_id, filters: Filters) -> Position:
    try:
        value = cursors.unsign(token, tenant_id, salt=SALT)
    except cursors.BadCursor:
        raise CursorError("not a cursor this feed returned for this tenant") from None
    if value.get("f") != filters.key():
        raise CursorError(
            "this cursor was returned for other filters (integration, entity_type): "
            "use the same filters as the request that returned it"
        )
    txid, change_id = value["p"]
    return Position(int(txid), int(change_id))


# -- reads --------------------------------------------------------------------------------


def horizon() -> Position:
    """The largest position that is final: no change at or below it can still appear."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            return Position(cursor.fetchone()[0] - 1, MAX_ID)
        # SQLite: the largest id ever committed (AUTOINCREMENT keeps it in sqlite_sequence;
        # the one writer's uncommitted ids are above it).
        cursor.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = %s", [RecordChange._meta.db_table]
        )
        row = cursor.fetchone()
        return Position(0, row[0] if row else 0)


def check_retained(position: Position) -> None:
    """Raise :class:`CursorExpired` if retention deleted a change after ``position``."""
    mark = ChangeFeedPruned.objects.filter(id=1).values_list("txid", "change_id").first()
    if mark is not None and position < Position(*mark):
        raise CursorExpired


def read(tenant_id, *, after: Position, filters: Filters, limit: int) -> Page:
    """Up to ``limit`` changes after ``after``, oldest first, and where to continue."""
    top = horizon()  # first: every change at or below it is already visible to what follows
    upper, bounded = top, False
    if filters:
        boundary = _nth_after(tenant_id, after, top, SCAN_LIMIT)
        if boundary is not None:
            upper, bounded = boundary, True
    changes = _changes(tenant_id, after, upper, filters, limit + 1)
    if len(changes) > limit:
        changes = changes[:limit]
        return Page(changes, Position(changes[-1].txid, changes[-1].id), True)
    if bounded:
        return Page(changes, upper, True)
    return Page(changes, max(after, top), False)


def _prep(name: str, value):
    return RecordChange._meta.get_field(name).get_db_prep_value(value, connection)


def _nth_after(tenant_id, after: Position, upper: Position, n: int) -> Position | None:
    """The position of the tenant's ``n``-th change after ``after`` (None: fewer)."""
    table = connection.ops.quote_name(RecordChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT txid, id FROM {table} WHERE tenant_id = %s "  # noqa: S608 - our table
            "AND (txid, id) > (%s, %s) AND (txid, id) <= (%s, %s) "
            "ORDER BY txid, id LIMIT 1 OFFSET %s",
            [_prep("tenant", tenant_id), after.txid, after.id, upper.txid, upper.id, n - 1],
        )
        row = cursor.fetchone()
    return Position(*row) if row else None


@dataclass(slots=True)
class Change:
    """One change as the feed serves it (a plain row: building model instances cost more than
    the query — docs/benchmarks.md, ``changefeed``)."""

    id: int
    txid: int
    record_id: UUID
    integration_id: UUID
    entity_type: str
    external_id: str
    action: str
    fields: list
    version: int
    at: datetime
    source: str
    source_id: str


COLUMNS = ", ".join(f.name for f in fields(Change))


@lru_cache(maxsize=4096)
def _fields(text: str) -> tuple:
    """A change's field list (few distinct ones: "[]" for every create and delete)."""
    return tuple(json.loads(text))


def _row(values) -> Change:
    change = Change(*values)
    # PostgreSQL answers typed values (Django loads jsonb as text); SQLite answers text.
    if isinstance(change.fields, str):
        change.fields = list(_fields(change.fields))
    if not isinstance(change.record_id, UUID):
        change.record_id = UUID(change.record_id)
        change.integration_id = UUID(change.integration_id)
    if not isinstance(change.at, datetime):
        change.at = parse_datetime(change.at)
    if timezone.is_naive(change.at):
        change.at = timezone.make_aware(change.at, UTC)
    return change


def _changes(tenant_id, after: Position, upper: Position, filters: Filters, n: int) -> list:
    table = connection.ops.quote_name(RecordChange._meta.db_table)
    where = ["tenant_id = %s", "(txid, id) > (%s, %s)", "(txid, id) <= (%s, %s)"]
    params = [_prep("tenant", tenant_id), after.txid, after.id, upper.txid, upper.id]
    if filters.integration_id:
        where.append("integration_id = %s")
        params.append(_prep("integration_id", filters.integration_id))
    if filters.entity_type:
        where.append("entity_type = %s")
        params.append(filters.entity_type)
    if filters.run_id:
        where += ["source = %s", "source_id = %s"]
        params += [RecordChange.Source.RUN, str(filters.run_id)]
    sql = (
        f"SELECT {COLUMNS} FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608 - fixed clauses
        "ORDER BY txid, id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, n])
        return [_row(values) for values in cursor.fetchall()]


def run_start(tenant_id, run_id) -> Position | None:
    """The position just before the first change sync run ``run_id`` wrote (None: it wrote
    none): with ``Filters(run_id=…)``, the cursor from which the feed returns exactly that
    run's changes (what a ``sync.completed`` event will carry). One probe of the history's
    (source, source_id) index."""
    first = (
        RecordChange.objects.filter(
            tenant_id=tenant_id, source=RecordChange.Source.RUN, source_id=str(run_id)
        )
        .order_by("txid", "id")
        .values_list("txid", "id")
        .first()
    )
    return None if first is None else Position(first[0], first[1] - 1)


# -- lag ----------------------------------------------------------------------------------


def newest_change_age() -> float | None:
    """Seconds since the newest change was written (None: no change yet)."""
    at = RecordChange.objects.order_by("-id").values_list("at", flat=True).first()
    return None if at is None else max(0.0, (timezone.now() - at).total_seconds())


def horizon_lag() -> float:
    """Seconds the horizon has been held: the age of the oldest transaction still running
    with a transaction id (PostgreSQL; changes committed after it started wait for it to
    end). 0 on SQLite, whose horizon never waits."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - LEAST("
            "(SELECT MIN(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "AND pid <> pg_backend_pid()), "
            "(SELECT MIN(prepared) FROM pg_prepared_xacts))), 0)"
        )
        return max(0.0, float(cursor.fetchone()[0]))


def lag_metrics():
    """Scrape-time gauges of the feed (registered by ``syncing.apps``)."""
    from prometheus_client.core import GaugeMetricFamily

    age = GaugeMetricFamily(
        "castiel_change_feed_newest_change_age_seconds",
        "Seconds since the newest record change was written to the change feed",
    )
    newest = newest_change_age()
    if newest is not None:
        age.add_metric([], newest)
    yield age
    lag = GaugeMetricFamily(
        "castiel_change_feed_horizon_lag_seconds",
        "Age of the oldest running write transaction: changes committed since it began are "
        "held back from the change feed until it ends (PostgreSQL; 0 on SQLite)",
    )
    lag.add_metric([], horizon_lag())
    yield lag
