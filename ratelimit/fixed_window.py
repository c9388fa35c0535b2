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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from castiel.observability.logging import get_logger

log = get_logger(__name__)

WINDOW = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


def _window(now: float) -> tuple[int, int]:
    bucket = int(now // WINDOW)
    retry_after = max(1, math.ceil((bucket + 1) * WINDOW - now))
    return bucket, retry_after


# INCR every key and give new ones their expiry, in one round trip and one command.
_INCR_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""
_scripts: dict[int, object] = {}


def _incr_many(keys: list[str]) -> list[int]:
    ttl = WINDOW + 5
    client = getattr(cache, "client", None)
    if client is not None and hasattr(client, "get_client"):  # django-redis
        connection = client.get_client(write=True)
        script = _scripts.get(id(connection))
        if script is None:
            script = _scripts[id(connection)] = connection.register_script(_INCR_SCRIPT)
        return [int(n) for n in script(keys=[cache.make_key(k) for k in keys], args=[ttl])]
    counts = []
    for key in keys:
        cache.add(key, 0, ttl)
        try:
            counts.append(int(cache.incr(key)))
        except ValueError:  # expired between add and incr
            cache.set(key, 1, ttl)
            counts.append(1)
    return counts


def count(keys: list[str]) -> list[int] | None:
    """Count one hit on every key of the current window; None when the cache is down."""
    try:
        return _incr_many(keys)
    except Exception:
        log.warning("ratelimit.fixed_window_unavailable", exc_info=True)
        return None


def hit(limits: list[tuple[str, int]], *, now: float | None = None) -> Decision:
    """Count one hit against each ``(name, limit)`` in this minute's window; refused (with the
    seconds until the next window) when any count passes its limit. A limit of 0 or None is
    no limit; a cache outage admits."""
    now = time.time() if now is None else now
    bucket, retry_after = _window(now)
    checks = [(f"{name}:{bucket}", limit) for name, limit in limits if limit and limit > 0]
    if not checks:
        return Decision(True)
    counts = count([key for key, _ in checks])
    if counts is None:
        return Decision(True)
    for (_, limit), n in zip(checks, counts, strict=True):
        if n > limit:
            return Decision(False, retry_after)
    return Decision(True)
