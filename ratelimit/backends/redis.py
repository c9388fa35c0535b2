"""The Redis backend: every decision is one EVALSHA of ``lua/acquire.lua``.

The scripts are registered once per process (redis-py's ``Script`` sends EVALSHA and loads
the script only if Redis answers NOSCRIPT, e.g. after a restart). Time comes from Redis
(``TIME`` inside the script), so every host decides on one clock.
"""

from __future__ import annotations

import struct
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ratelimit import window
from ratelimit.backends.base import (
    AdaptiveState,
    Adjustment,
    BackendUnavailable,
    Decision,
    Keys,
    LevelUsage,
    Usage,
)
from ratelimit.policy import INTEGRATION, Policy, Subject

LUA = Path(__file__).resolve().parent.parent / "lua"
_STATUS_REASON = {0: "limit", -1: "capacity", -2: "blocked"}
# Errors that mean "Redis is not there" (the limiter degrades); anything else is a bug and
# propagates.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, *, prefix: str, buckets: int, timeout: float = 0.5):
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate retry re-dials a pooled connection that a Redis restart closed;
            # no backoff, because a dead Redis must fail fast into degraded mode.
            retry=Retry(NoBackoff(), 1),
        )
        self.keys = Keys(prefix)
        self.buckets = buckets
        self._acquire = self.client.register_script((LUA / "acquire.lua").read_text())
        self._peek = self.client.register_script((LUA / "peek.lua").read_text())
        self._adjust = self.client.register_script((LUA / "adjust.lua").read_text())
        self._merge = self.client.register_script((LUA / "merge.lua").read_text())
        self._memo: dict = {}

    def _prepared(self, subject: Subject, policy: Policy, cost: int) -> tuple[list, list, list]:
        """Keys, script argument and level names for a decision, memoised: the gate asks with
        the same (cached) policy object and subject again and again, and building them is most
        of this backend's Python time."""
        memo_key = (id(policy), subject, cost)
        found = self._memo.get(memo_key)
        if found is not None and found[0] is policy:
            return found[1]
        levels = self.keys.levels(subject, policy)
        words = [cost, self.buckets]
        for spec in levels:
            words += [spec.limit.limit, spec.limit.window_ms, 1 if spec.adaptive else 0]
        keys = [self.keys.state(subject.tenant_id, subject.integration_id)]
        keys += [spec.key for spec in levels]
        packed = struct.pack(f"<{len(words)}i", *words)
        prepared = (keys, [packed], [spec.level for spec in levels])
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[memo_key] = (policy, prepared)
        return prepared

    def acquire(self, subject: Subject, policy: Policy, cost: int = 1) -> Decision:
        keys, args, level_names = self._prepared(subject, policy, cost)
        try:
            try:
                # EVALSHA directly (what Script.__call__ does, minus its per-call overhead).
                reply = self.client.execute_command(
                    "EVALSHA", self._acquire.sha, len(keys), *keys, *args
                )
            except redis.exceptions.NoScriptError:
                reply = self._acquire(keys=keys, args=args)  # loads it (Redis restarted)
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"redis: {exc.__class__.__name__}") from exc
        if isinstance(reply, int):  # admitted, limits whole: the script's short answer
            return Decision(True, now=reply / 1000)
        status, wait_ms, level, now_ms, multiplier = reply.split()
        multiplier = float(multiplier)
        now = int(now_ms) / 1000
        if status == b"1":
            return Decision(True, now=now, multiplier=multiplier)
        level = int(level)
        return Decision(
            False,
            wait=int(wait_ms) / 1000,
            level=level_names[level - 1] if level else INTEGRATION,
            reason=_STATUS_REASON[int(status)],
            now=now,
            multiplier=multiplier,
        )

    def adjust(self, tenant_id: str, integration_id: str, adjustment: Adjustment, *, ttl: float):
        args = [
            adjustment.scale,
            "" if adjustment.target is None else adjustment.target,
            adjustment.step,
            adjustment.block,
            adjustment.minimum,
            round(ttl * 1000),
        ]
        try:
            multiplier, blocked = self._adjust(
                keys=[self.keys.state(tenant_id, integration_id)], args=args
            )
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"redis: {exc.__class__.__name__}") from exc
        blocked = int(blocked)
        return AdaptiveState(float(multiplier), blocked / 1000 if blocked else None)

    def usage(self, tenant_id: str, integration_id: str, specs_with_ops) -> Usage:
        """``specs_with_ops``: (LevelSpec, operation or None) pairs, from the limiter."""
        specs = [spec for spec, _op in specs_with_ops]
        keys = [self.keys.state(tenant_id, integration_id)] + [spec.key for spec in specs]
        args = [self.buckets] + [spec.limit.window_ms for spec in specs]
        try:
            now_ms, multiplier, blocked, *used = self._peek(keys=keys, args=args)
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"redis: {exc.__class__.__name__}") from exc
        multiplier = float(multiplier)
        levels = [
            LevelUsage(
                level=spec.level,
                operation=operation,
                limit=spec.limit,
                effective_limit=window.effective_limit(spec.limit.limit, multiplier, spec.adaptive),
                used=int(count),
            )
            for (spec, operation), count in zip(specs_with_ops, used, strict=True)
        ]
        blocked = int(blocked)
        return Usage(
            levels=levels,
            state=AdaptiveState(multiplier, blocked / 1000 if blocked > int(now_ms) else None),
            now=int(now_ms) / 1000,
        )

    def merge_counts(self, counts: dict[str, tuple[dict[int, int], int]]) -> int:
        """Add counts taken elsewhere (a process's local ones, from an outage) to the shared
        ones: ``{key: ({bucket index: count}, ms to stay live)}``; one round trip."""
        if not counts:
            return 0
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key, (buckets, ttl_ms) in counts.items():
                    args: list = [max(1, int(ttl_ms))]
                    for index, count in buckets.items():
                        args += [index, count]
                    self._merge(keys=[key], args=args, client=pipe)
                pipe.execute()
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"redis: {exc.__class__.__name__}") from exc
        return len(counts)

    def ping(self) -> None:
        try:
            self.client.ping()
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"redis: {exc.__class__.__name__}") from exc

    def clear(self, tenant_id: str) -> None:
        """Delete one tenant's counters (tests and the admin's reset action)."""
        pattern = f"{self.keys.base(tenant_id)}:*".replace("{", "\\{").replace("}", "\\}")
        for key in self.client.scan_iter(match=pattern, count=500):
            self.client.delete(key)
