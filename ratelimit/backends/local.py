"""Process-local counters: the degraded fallback when Redis is unreachable, and the
``local`` backend for single-process development. Thread-safe; not shared between processes
(the limiter divides limits by the expected process count when it uses this as a fallback)."""

from __future__ import annotations

import threading
from collections.abc import Callable

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


class LocalBackend:
    name = "local"

    def __init__(self, *, prefix: str, buckets: int, clock: Callable[[], int] = wall_clock_ms):
        self.keys = Keys(prefix)
        self.buckets = buckets
        self.clock = clock
        self._counts: dict[str, dict[int, int]] = {}
        # key -> (state, expires at ms): adaptive state is forgotten after its TTL, as in Redis.
        self._states: dict[str, tuple[dict[str, float], int]] = {}
        self._lock = threading.Lock()
        # key -> ms after which it holds nothing live; swept now and then so idle integrations
        # do not accumulate in a long-lived process.
        self._expires: dict[str, int] = {}
        self._decisions = 0

    def acquire(self, subject: Subject, policy: Policy, cost: int = 1) -> Decision:
        levels = self.keys.levels(subject, policy)
        state_key = self.keys.state(subject.tenant_id, subject.integration_id)
        with self._lock:
            decision, updated = evaluate(
                levels,
                self._counts,
                self._state(state_key, now_ms := self.clock()),
                now_ms=now_ms,
                cost=cost,
                buckets=self.buckets,
            )
            if updated:
                self._counts.update(updated)
                for spec in levels:
                    self._expires[spec.key] = now_ms + 2 * spec.limit.window_ms
            self._decisions += 1
            if self._decisions % 1000 == 0:
                self._sweep(now_ms)
        return decision

    def _sweep(self, now_ms: int) -> None:
        for key in [k for k, until in self._expires.items() if until < now_ms]:
            self._counts.pop(key, None)
            del self._expires[key]
        for key in [k for k, (_s, until) in self._states.items() if until < now_ms]:
            del self._states[key]

    def live_counts(self) -> dict[str, tuple[dict[int, int], int]]:
        """``{key: ({bucket index: count}, ms it stays live)}`` of every key still live: what
        the limiter copies to Redis when an outage ends."""
        now_ms = self.clock()
        with self._lock:
            return {
                key: (dict(counts), self._expires[key] - now_ms)
                for key, counts in self._counts.items()
                if counts and self._expires.get(key, 0) > now_ms
            }

    def forget(self, keys) -> None:
        with self._lock:
            for key in keys:
                self._counts.pop(key, None)
                self._expires.pop(key, None)

    def adjust(self, tenant_id: str, integration_id: str, adjustment: Adjustment, *, ttl: float):
        key = self.keys.state(tenant_id, integration_id)
        now_ms = self.clock()
        with self._lock:
            state = adjusted_state(self._state(key, now_ms), adjustment, now_ms=now_ms)
            self._states[key] = (state, int(max(now_ms + ttl * 1000, state.get("b", 0))))
        blocked = state.get("b")
        return AdaptiveState(state["m"], blocked / 1000 if blocked else None)

    def usage(self, tenant_id: str, integration_id: str, specs_with_ops) -> Usage:
        specs = [spec for spec, _op in specs_with_ops]
        with self._lock:
            return level_usage(
                specs,
                self._counts,
                self._state(self.keys.state(tenant_id, integration_id), now_ms := self.clock()),
                now_ms=now_ms,
                buckets=self.buckets,
                operation_of={spec.key: op for spec, op in specs_with_ops},
            )

    def _state(self, key: str, now_ms: int) -> dict[str, float]:
        state, expires_ms = self._states.get(key, ({}, 0))
        return state if expires_ms >= now_ms else {}

    def ping(self) -> None:
        return None

    def clear(self, tenant_id: str) -> None:
        base = self.keys.base(tenant_id)
        with self._lock:
            for store in (self._counts, self._states):
                for key in [k for k in store if k.startswith(base)]:
                    del store[key]
