"""The database backend: counters in the main database, for deployments without Redis.

Why the database and not a file lock: every process that shares Castiel's database (the web
process and every qcluster worker of the embedded profile, or several hosts on one
PostgreSQL) then shares the limits, with no extra file to configure, and the usage pages read
the same rows. Correctness across processes comes from the transaction around each decision:

* **SQLite** (embedded): settings open every transaction with ``BEGIN IMMEDIATE``, which takes
  the database's write lock before the first read, so decisions are serialised across every
  process on the machine (``select_for_update`` is a no-op on SQLite and is not relied on).
* **PostgreSQL**: missing rows are inserted with ``ON CONFLICT DO NOTHING``, then the rows are
  locked with ``SELECT … FOR UPDATE`` in key order (no deadlock between two decisions).

A decision is a handful of primary-key reads and one upsert inside a short transaction. Call
it outside long transactions: the row locks (PostgreSQL) or the write lock (SQLite) are held
until the outermost transaction ends. Time is this machine's clock (``time.time()``): on one
host every process shares it; several hosts on one PostgreSQL need synchronised clocks (NTP).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections, transaction

from ratelimit.backends.base import (
    AdaptiveState,
    Adjustment,
    Decision,
    Keys,
    Usage,
    adjusted_state,
    evaluate,
    level_usage,
    wall_clock_ms,
)
from ratelimit.policy import Policy, Subject


def _counts(data: dict) -> dict[int, int]:
    return {int(index): int(count) for index, count in data.items()}


class DatabaseBackend:
    name = "database"

    def __init__(
        self,
        *,
        prefix: str,
        buckets: int,
        using: str = "default",
        clock: Callable[[], int] = wall_clock_ms,
    ):
        self.keys = Keys(prefix)
        self.buckets = buckets
        self.using = using
        self.clock = clock

    @property
    def _model(self):
        from ratelimit.models import LimiterCounter

        return LimiterCounter

    def _locked_rows(self, keys: list[str]) -> dict[str, object]:
        model = self._model
        manager = model.objects.using(self.using)
        if connections[self.using].vendor == "sqlite":
            # BEGIN IMMEDIATE already holds the write lock: plain reads are serialised.
            return {row.key: row for row in manager.filter(key__in=keys)}
        manager.bulk_create([model(key=key) for key in sorted(set(keys))], ignore_conflicts=True)
        rows = manager.select_for_update().filter(key__in=keys).order_by("key")
        return {row.key: row for row in rows}

    def acquire(self, subject: Subject, policy: Policy, cost: int = 1) -> Decision:
        levels = self.keys.levels(subject, policy)
        state_key = self.keys.state(subject.tenant_id, subject.integration_id)
        with transaction.atomic(using=self.using):
            rows = self._locked_rows([spec.key for spec in levels] + [state_key])
            now_ms = self.clock()
            counts = {
                spec.key: _counts(rows[spec.key].data) if spec.key in rows else {}
                for spec in levels
            }
            state = {}
            if state_key in rows and rows[state_key].expires_at * 1000 >= now_ms:
                state = rows[state_key].data
            decision, updated = evaluate(
                levels, counts, state, now_ms=now_ms, cost=cost, buckets=self.buckets
            )
            if updated:
                expiry = {spec.key: (now_ms / 1000) + spec.limit.window * 2 for spec in levels}
                self._model.objects.using(self.using).bulk_create(
                    [
                        self._model(
                            key=key,
                            data={str(i): c for i, c in live.items()},
                            expires_at=expiry[key],
                        )
                        for key, live in updated.items()
                    ],
                    update_conflicts=True,
                    unique_fields=["key"],
                    update_fields=["data", "expires_at"],
                )
        return decision

    def adjust(self, tenant_id: str, integration_id: str, adjustment: Adjustment, *, ttl: float):
        key = self.keys.state(tenant_id, integration_id)
        with transaction.atomic(using=self.using):
            rows = self._locked_rows([key])
            now_ms = self.clock()
            state = adjusted_state(rows[key].data if key in rows else {}, adjustment, now_ms=now_ms)
            blocked = state.get("b", 0)
            self._model.objects.using(self.using).bulk_create(
                [
                    self._model(
                        key=key, data=state, expires_at=max(now_ms + ttl * 1000, blocked) / 1000
                    )
                ],
                update_conflicts=True,
                unique_fields=["key"],
                update_fields=["data", "expires_at"],
            )
        return AdaptiveState(state["m"], blocked / 1000 if blocked else None)

    def usage(self, tenant_id: str, integration_id: str, specs_with_ops) -> Usage:
        specs = [spec for spec, _op in specs_with_ops]
        state_key = self.keys.state(tenant_id, integration_id)
        now_ms = self.clock()
        rows = {
            row.key: row
            for row in self._model.objects.using(self.using).filter(
                key__in=[s.key for s in specs] + [state_key]
            )
        }
        state = rows[state_key].data if state_key in rows else {}
        # An adaptive state past its TTL is forgotten, as Redis would expire it.
        if state_key in rows and rows[state_key].expires_at * 1000 < now_ms:
            state = {}
        return level_usage(
            specs,
            {key: _counts(row.data) for key, row in rows.items() if key != state_key},
            state,
            now_ms=now_ms,
            buckets=self.buckets,
            operation_of={spec.key: op for spec, op in specs_with_ops},
        )

    def ping(self) -> None:
        return None

    def clear(self, tenant_id: str) -> None:
        self._model.objects.using(self.using).filter(
            key__startswith=self.keys.base(tenant_id)
        ).delete()

    def delete_expired(self) -> int:
        deleted, _ = (
            self._model.objects.using(self.using)
            .filter(expires_at__lt=self.clock() / 1000)
            .delete()
        )
        return deleted
