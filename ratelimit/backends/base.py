"""What every backend returns, the keys it uses, and the one evaluation the Python backends
share (the Redis backend runs the same steps in Lua).

A backend stores, per key, a map ``bucket index -> count`` (a Redis hash; a database row; a
dict) and, per integration, the adaptive state ``{"m": multiplier, "b": blocked-until ms}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ratelimit import window
from ratelimit.policy import INTEGRATION, OPERATION, TENANT, Limit, Policy, Subject


def wall_clock_ms() -> int:
    """This machine's clock in ms: the clock of the database and process-local backends
    (the Redis backend uses the Redis server's clock instead)."""
    return int(time.time() * 1000)


class BackendUnavailable(Exception):
    """The backend cannot be reached (the limiter falls back to local limits)."""


# Not frozen: a decision is made per request, and a frozen dataclass's __init__ is several
# times slower (object.__setattr__ per field). Treat it as a value all the same.
@dataclass(slots=True)
class Decision:
    allowed: bool
    # Seconds until a retry can succeed (0 when allowed).
    wait: float = 0.0
    # The level that said no: tenant / integration / operation (None when allowed).
    level: str | None = None
    # "limit" (a window is full), "blocked" (the provider asked us to wait) or "capacity"
    # (the cost can never fit the limit).
    reason: str | None = None
    # The backend clock when it decided, in seconds (Redis server time for Redis).
    now: float = 0.0
    multiplier: float = 1.0
    degraded: bool = False

    @property
    def outcome(self) -> str:
        """allow / wait / reject — the three answers of ``acquire``."""
        if self.allowed:
            return "allow"
        return "reject" if self.reason == "capacity" else "wait"


@dataclass(frozen=True)
class Adjustment:
    """A change to an integration's adaptive state, applied atomically by the backend.

    ``m' = m * scale``; then with a target ``m' = min(target, m' + step)`` (move toward the
    provider's figure, upward by at most one step), without one ``m' = m' + step``; clamped to
    [minimum, 1]. ``block`` seconds from now extends (never shortens) the block.
    """

    scale: float = 1.0
    target: float | None = None
    step: float = 0.0
    block: float = 0.0
    minimum: float = 0.05

    def apply(self, multiplier: float) -> float:
        value = multiplier * self.scale
        value = (
            min(self.target, value + self.step) if self.target is not None else value + self.step
        )
        # Rounded so that repeated steps land exactly on 1.0 (as the Lua script does).
        return round(min(1.0, max(self.minimum, value)), 6)


@dataclass(frozen=True)
class AdaptiveState:
    multiplier: float = 1.0
    blocked_until: float | None = None  # backend clock, seconds


@dataclass(frozen=True)
class LevelUsage:
    level: str
    operation: str | None
    limit: Limit
    effective_limit: int
    used: int

    @property
    def remaining(self) -> int:
        return max(0, self.effective_limit - self.used)

    @property
    def headroom(self) -> float:
        return round(self.remaining / self.effective_limit, 4) if self.effective_limit else 0.0


@dataclass(frozen=True)
class Usage:
    levels: list[LevelUsage]
    state: AdaptiveState = field(default_factory=AdaptiveState)
    now: float = 0.0
    degraded: bool = False


@dataclass(frozen=True)
class LevelSpec:
    level: str
    key: str
    limit: Limit
    adaptive: bool  # scaled by the provider multiplier (integration and operation levels)


class Keys:
    """Redis-style keys; the ``{tenant}`` hash tag keeps one tenant's keys in one cluster slot,
    so the acquire script may touch all of them."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def base(self, tenant_id: str) -> str:
        return f"{self.prefix}:rl:{{{tenant_id}}}"

    def tenant(self, tenant_id: str) -> str:
        return f"{self.base(tenant_id)}:t"

    def integration(self, tenant_id: str, integration_id: str) -> str:
        return f"{self.base(tenant_id)}:i:{integration_id}"

    def operation(self, tenant_id: str, integration_id: str, operation: str) -> str:
        return f"{self.base(tenant_id)}:o:{integration_id}:{operation}"

    def state(self, tenant_id: str, integration_id: str) -> str:
        return f"{self.base(tenant_id)}:s:{integration_id}"

    def levels(self, subject: Subject, policy: Policy) -> list[LevelSpec]:
        t, i = subject.tenant_id, subject.integration_id
        return [
            LevelSpec(TENANT, self.tenant(t), policy.tenant, adaptive=False),
            LevelSpec(INTEGRATION, self.integration(t, i), policy.integration, adaptive=True),
            LevelSpec(
                OPERATION,
                self.operation(t, i, subject.operation),
                policy.for_operation(subject.operation),
                adaptive=True,
            ),
        ]


# --- the evaluation shared by the database and local backends --------------------------------


def evaluate(
    levels: list[LevelSpec],
    counts: Mapping[str, Mapping[int, int]],
    state: Mapping[str, float],
    *,
    now_ms: int,
    cost: int,
    buckets: int,
) -> tuple[Decision, dict[str, dict[int, int]] | None]:
    """Decide; on admission also return the new counts of every level key (pruned)."""
    multiplier = float(state.get("m", 1.0))
    blocked_until = float(state.get("b", 0))
    now = now_ms / 1000
    if blocked_until > now_ms:
        decision = Decision(
            False,
            wait=(blocked_until - now_ms) / 1000,
            level=INTEGRATION,
            reason="blocked",
            now=now,
            multiplier=multiplier,
        )
        return decision, None
    worst: Decision | None = None
    updated: dict[str, dict[int, int]] = {}
    for spec in levels:
        width = window.bucket_width_ms(spec.limit.window_ms, buckets)
        live = window.live_counts(counts.get(spec.key, {}), now_ms, spec.limit.window_ms, width)
        if cost > spec.limit.limit:
            return (
                Decision(
                    False, level=spec.level, reason="capacity", now=now, multiplier=multiplier
                ),
                None,
            )
        limit = window.effective_limit(spec.limit.limit, multiplier, spec.adaptive)
        wait = window.wait_ms(
            live,
            now_ms=now_ms,
            limit=limit,
            window_ms=spec.limit.window_ms,
            width_ms=width,
            cost=cost,
        )
        if wait > 0:
            if worst is None or wait / 1000 > worst.wait:
                worst = Decision(
                    False,
                    wait=wait / 1000,
                    level=spec.level,
                    reason="limit",
                    now=now,
                    multiplier=multiplier,
                )
            continue
        current = now_ms // width
        live[current] = live.get(current, 0) + cost
        updated[spec.key] = live
    if worst is not None:
        return worst, None
    return Decision(True, now=now, multiplier=multiplier), updated


def level_usage(
    levels: list[LevelSpec],
    counts: Mapping[str, Mapping[int, int]],
    state: Mapping[str, float],
    *,
    now_ms: int,
    buckets: int,
    operation_of: Mapping[str, str | None],
) -> Usage:
    multiplier = float(state.get("m", 1.0))
    blocked = float(state.get("b", 0))
    result = []
    for spec in levels:
        width = window.bucket_width_ms(spec.limit.window_ms, buckets)
        live = window.live_counts(counts.get(spec.key, {}), now_ms, spec.limit.window_ms, width)
        result.append(
            LevelUsage(
                level=spec.level,
                operation=operation_of.get(spec.key),
                limit=spec.limit,
                effective_limit=window.effective_limit(spec.limit.limit, multiplier, spec.adaptive),
                used=sum(live.values()),
            )
        )
    return Usage(
        levels=result,
        state=AdaptiveState(
            multiplier=multiplier, blocked_until=blocked / 1000 if blocked > now_ms else None
        ),
        now=now_ms / 1000,
    )


def adjusted_state(
    state: Mapping[str, float], adjustment: Adjustment, *, now_ms: int
) -> dict[str, float]:
    multiplier = adjustment.apply(float(state.get("m", 1.0)))
    blocked = float(state.get("b", 0))
    if adjustment.block > 0:
        blocked = max(blocked, now_ms + adjustment.block * 1000)
    new = {"m": multiplier}
    if blocked > now_ms:
        new["b"] = blocked
    return new
