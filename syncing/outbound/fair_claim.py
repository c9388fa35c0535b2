"""Tenant-fair claims of due outbound changes.

One tenant's burst (10,000 changes from an import) must not delay another tenant's single
change by the time the whole burst takes to push. Each claim therefore takes, from every
tenant with pending changes, up to ``ceil(limit / tenants)`` of its due heads (oldest
first), and keeps the ``limit`` best by (rank inside the tenant, changes the tenant already
has in flight, due time, seq): every tenant's first change before anyone's second, and when
more tenants wait than a batch holds, those with nothing being pushed go first — a
round-robin whose state is the outbox itself. (By due time alone, a tenant whose burst came
first would keep every batch: its tenth change is still older than the next tenant's first.)
A tenant alone fills the batch by itself, so a single busy tenant pushes as before.

On PostgreSQL the tenants come from a skip scan of the partial index of pending changes (a
recursive CTE: one index probe per tenant, never a scan of the backlog), and their heads from
one ``LATERAL`` query per claim, locked ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers
split the work. An earlier attempt ranked every due change with a window function, which
cost ~6 % of the push rate with a 10,000-change backlog (docs/benchmarks.md). Other
databases (SQLite, one writer at a time) do the same steps with ORM queries.

"Due head" is ``syncing.outbound.dispatch.due``: pending, unclaimed, due, its integration
enabled and active, its tenant active, no earlier open change of its record — and not a
suspect (``lost_attempts``), which the minute tick dispatches alone. A deactivated tenant is
left out of the tenants a claim shares the batch between.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Count

from castiel.db.leases import claim_listed
from castiel.tenancy.models import Tenant
from integrations.models import Integration
from syncing.models import OutboundChange

Status = OutboundChange.Status


def claim_fairly(token: str, expires, limit: int, now, due) -> list:
    """Lease up to ``limit`` due heads, fairly across tenants, under ``token``; their ids.

    ``due``: the queryset of due heads (``syncing.outbound.dispatch.due(now)``, suspects
    excluded).
    Call inside a transaction.
    """
    if connection.vendor == "postgresql":
        return _postgresql(token, expires, limit, now)
    return _portable(token, expires, limit, due)


def _per_tenant(limit: int, tenants: int) -> int:
    return max(1, -(-limit // max(1, tenants)))


def _in_flight() -> dict:
    """Changes each tenant has queued or being pushed right now."""
    rows = (
        OutboundChange.objects.filter(status__in=(Status.QUEUED, Status.RUNNING))
        .order_by()
        .values_list("tenant_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def _active(tenants: list) -> list:
    """The active ones among ``tenants`` (in their order)."""
    active = set(Tenant.objects.filter(pk__in=tenants, is_active=True).values_list("pk", flat=True))
    return [tenant_id for tenant_id in tenants if tenant_id in active]


def _portable(token: str, expires, limit: int, due) -> list:
    # Tenants with pending changes, from the partial index (not by evaluating every due head).
    tenants = _active(
        list(
            OutboundChange.objects.filter(status=Status.PENDING)
            .order_by()
            .values_list("tenant_id", flat=True)
            .distinct()
        )
    )
    per = _per_tenant(limit, len(tenants))
    busy = _in_flight()
    ranked = []
    for tenant_id in tenants:
        heads = due.filter(tenant_id=tenant_id).order_by("next_attempt_at", "seq")
        rows = heads.values_list("id", "next_attempt_at", "seq")[:per]
        load = busy.get(tenant_id, 0)
        ranked += [(rank, load, at, seq, pk) for rank, (pk, at, seq) in enumerate(rows)]
    chosen = [pk for *_, pk in sorted(ranked)[:limit]]
    # No row locks here: the conditional UPDATE is the claim (SQLite's writers serialise).
    return claim_listed(
        OutboundChange,
        chosen,
        token=token,
        values={"status": Status.QUEUED, "lease_expires_at": expires},
        free={"status": Status.PENDING, "lease_owner": ""},
    )


def _postgresql(token: str, expires, limit: int, now) -> list:
    q = connection.ops.quote_name
    meta = OutboundChange._meta
    table = q(meta.db_table)
    col = {f.name: q(f.column) for f in meta.concrete_fields}
    integrations = q(Integration._meta.db_table)
    icol = {f.name: q(f.column) for f in Integration._meta.concrete_fields}
    tenant_table = q(Tenant._meta.db_table)
    tcol = {f.name: q(f.column) for f in Tenant._meta.concrete_fields}
    with connection.cursor() as cursor:
        # Distinct tenants with pending changes by skip scan: each step asks the index for
        # the next tenant id after the previous one.
        cursor.execute(
            f"WITH RECURSIVE tenants(tenant_id) AS ("  # noqa: S608 - our table and columns
            f"  (SELECT {col['tenant']} FROM {table} WHERE {col['status']} = %s"
            f"   ORDER BY {col['tenant']} LIMIT 1)"
            f"  UNION ALL"
            f"  SELECT (SELECT o.{col['tenant']} FROM {table} o WHERE o.{col['status']} = %s"
            f"          AND o.{col['tenant']} > t.tenant_id ORDER BY o.{col['tenant']} LIMIT 1)"
            f"  FROM tenants t WHERE t.tenant_id IS NOT NULL"
            f") SELECT tenant_id FROM tenants WHERE tenant_id IS NOT NULL",
            [Status.PENDING, Status.PENDING],
        )
        tenants = _active([row[0] for row in cursor.fetchall()])
        if not tenants:
            return []
        per = _per_tenant(limit, len(tenants))
        busy = _in_flight()
        loads = [busy.get(tenant_id, 0) for tenant_id in tenants]
        open_statuses = list(OutboundChange.OPEN)
        heads = (
            f"SELECT o.{col['id']} AS id, o.{col['next_attempt_at']} AS at, o.{col['seq']} AS seq"  # noqa: S608
            f"  FROM {table} o JOIN {integrations} i ON i.{icol['id']} = o.{col['integration']}"
            f"  JOIN {tenant_table} tn ON tn.{tcol['id']} = o.{col['tenant']}"
            f" WHERE o.{col['tenant']} = t.tenant_id AND o.{col['status']} = %s"
            f"   AND tn.{tcol['is_active']}"
            f"   AND o.{col['lease_owner']} = '' AND o.{col['lost_attempts']} = 0"
            f"   AND o.{col['next_attempt_at']} <= %s AND i.{icol['enabled']}"
            f"   AND i.{icol['status']} = %s"
            f"   AND NOT EXISTS (SELECT 1 FROM {table} e"
            f"        WHERE e.{col['record_id']} = o.{col['record_id']}"
            f"          AND e.{col['seq']} < o.{col['seq']} AND e.{col['status']} = ANY(%s))"
            f" ORDER BY o.{col['next_attempt_at']}, o.{col['seq']} LIMIT %s"
            f" FOR UPDATE OF o SKIP LOCKED"
        )
        cursor.execute(
            f"UPDATE {table} SET {col['lease_owner']} = %s, {col['status']} = %s,"  # noqa: S608
            f" {col['lease_expires_at']} = %s"
            f" WHERE {col['id']} IN ("
            f"  SELECT id FROM ("
            f"    SELECT h.id, h.at, h.seq, t.load,"
            f"           row_number() OVER (PARTITION BY t.tenant_id ORDER BY h.at, h.seq) AS rank"
            f"      FROM unnest(%s::uuid[], %s::int[]) AS t(tenant_id, load)"
            f"      CROSS JOIN LATERAL ({heads}) h"
            f"  ) ranked ORDER BY rank, load, at, seq LIMIT %s"
            f") RETURNING {col['id']}",
            [
                token,
                Status.QUEUED,
                expires,
                tenants,
                loads,
                Status.PENDING,
                now,
                Integration.Status.ACTIVE,
                open_statuses,
                per,
                limit,
            ],
        )
        return [row[0] for row in cursor.fetchall()]
