"""Fixed one-minute windows for inbound traffic (the webhook receiver's per-registration and
per-tenant limits, the audit of rejected deliveries).

Why not the three-level limiter of this app: that one guards *outbound* calls, where the
promise is that no sliding window ever admits more than the provider allows and safe calls
wait. Inbound deliveries are refused, not delayed, and the receiver answers in a few
milliseconds, so one round trip that counts every key at once is worth more than exactness at
window edges (a burst straddling a minute boundary may see up to twice the limit).

Counters live in the Django cache: with django-redis every key is incremented by one Lua
script (one round trip, atomic); other caches use ``add`` + ``incr`` (atomic on
Redis/memcached, best effort on the database cache of the embedded profile). **If the cache
is down nothing is limited** (:func:`hit` answers None and the caller admits): an outage of a
protection must not turn into rejected deliveries.

**Leases** keep generous limits off the round trip: for a limit of ``LEASE_FROM`` or more per
window a process takes a slice of the window's budget at once (``INCRBY`` the slice: about a
hundredth of the limit, at most ``LEASE_MAX``) and admits from it locally until it is used
up — one round trip per slice instead of one per delivery (the receiver's throughput under a
native load generator: docs/benchmarks.md). Nothing is ever admitted beyond the limit: a
slice is granted only from what the counter has left, and a slice a process does not use up
before the window ends is simply lost (each process can leave at most one slice per key
unused, so a window may refuse up to ``processes x slice`` deliveries early). Smaller limits
count every hit, exactly as before.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

from castiel.observability.logging import get_logger

log = get_logger(__name__)

WINDOW = 60
LEASE_FROM = 1000  # limits per window from which a process leases slices of the budget
LEASE_MAX = 100


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


def _window(now: float) -> tuple[int, int]:
    bucket = int(now // WINDOW)
    retry_after = max(1, math.ceil((bucket + 1) * WINDOW - now))
    return bucket, retry_after


# INCRBY every key by its amount and give new ones their expiry, in one round trip.
_INCR_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local by = tonumber(ARGV[i + 1])
  counts[i] = redis.call('INCRBY', key, by)
  if counts[i] == by then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""
_scripts: dict[int, object] = {}


def _incr_many(keys: list[str], amounts: list[int] | None = None) -> list[int]:
    ttl = WINDOW + 5
    amounts = amounts or [1] * len(keys)
    client = getattr(cache, "client", None)
    if client is not None and hasattr(client, "get_client"):  # django-redis
        connection = client.get_client(write=True)
        script = _scripts.get(id(connection))
        if script is None:
            script = _scripts[id(connection)] = connection.register_script(_INCR_SCRIPT)
        return [
            int(n) for n in script(keys=[cache.make_key(k) for k in keys], args=[ttl, *amounts])
        ]
    counts = []
    for key, amount in zip(keys, amounts, strict=True):
        cache.add(key, 0, ttl)
        try:
            counts.append(int(cache.incr(key, amount)))
        except ValueError:  # expired between add and incr
            cache.set(key, amount, ttl)
            counts.append(amount)
    return counts


def count(keys: list[str], amounts: list[int] | None = None) -> list[int] | None:
    """Add ``amounts`` (one each by default) to the keys of the current window; the new
    counts, or None when the cache is down."""
    try:
        return _incr_many(keys, amounts)
    except Exception:
        log.warning("ratelimit.fixed_window_unavailable", exc_info=True)
        return None


def lease_size(limit: int) -> int:
    """The slice of a window's budget a process takes at once (1: count every hit)."""
    if limit < LEASE_FROM:
        return 1
    return max(1, min(LEASE_MAX, limit // 100))


class _Leases:
    """This process's unused slices, per window key (old windows are dropped)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.left: dict[str, int] = {}
        self.bucket = None

    def take(self, key: str, bucket: int) -> bool:
        with self.lock:
            if bucket != self.bucket:
                self.left.clear()
                self.bucket = bucket
            if self.left.get(key, 0) > 0:
                self.left[key] -= 1
                return True
            return False

    def put(self, key: str, bucket: int, left: int) -> None:
        with self.lock:
            if bucket == self.bucket and left > 0:
                self.left[key] = self.left.get(key, 0) + left


_leases = _Leases()


def hit(limits: list[tuple[str, int]], *, now: float | None = None) -> Decision:
    """Count one hit against each ``(name, limit)`` in this minute's window; refused (with the
    seconds until the next window) when any count passes its limit. A limit of 0 or None is
    no limit; a cache outage admits."""
    now = time.time() if now is None else now
    bucket, retry_after = _window(now)
    checks = [(f"{name}:{bucket}", limit) for name, limit in limits if limit and limit > 0]
    # A key with a slice of its budget left in this process needs no round trip.
    checks = [(key, limit) for key, limit in checks if not _leases.take(key, bucket)]
    if not checks:
        return Decision(True)
    sizes = [lease_size(limit) for _, limit in checks]
    counts = count([key for key, _ in checks], sizes)
    if counts is None:
        return Decision(True)
    allowed = True
    for (key, limit), size, n in zip(checks, sizes, counts, strict=True):
        # What this slice got of the budget: all of it, part of it, or nothing.
        granted = min(size, limit - (n - size))
        if granted <= 0:
            allowed = False
        else:
            _leases.put(key, bucket, granted - 1)
    return Decision(True) if allowed else Decision(False, retry_after)
