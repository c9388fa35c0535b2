"""The receiver's own per-registration and per-tenant limits (fixed one-minute windows).

One small function, :func:`check`, so it can later be swapped for the shared multi-level
limiter (castiel/ratelimit/). Counters live in the Django cache: with django-redis both
counters are incremented by one Lua script (one round trip, atomic);
other caches use ``add`` + ``incr`` (atomic on Redis/memcached, best effort on the database
cache of the embedded profile). If the cache is down the receiver does not rate-limit: an
outage of a protection must not turn into rejected deliveries.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
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
    try:
        return _incr_many(keys)
    except Exception:
        log.warning("webhooks.ratelimit_unavailable", exc_info=True)
        return None


def check(snapshot, *, now: float | None = None) -> Decision:
    """Count one delivery against the registration's and the tenant's limits."""
    now = time.time() if now is None else now
    bucket, retry_after = _window(now)
    reg_limit = snapshot.rate_limit_per_minute
    if reg_limit is None:
        reg_limit = settings.CASTIEL_WEBHOOK_RATE_LIMIT_PER_MINUTE
    tenant_limit = settings.CASTIEL_WEBHOOK_TENANT_RATE_LIMIT_PER_MINUTE
    checks = [
        (f"webhooks:rl:r:{snapshot.id}:{bucket}", reg_limit),
        (f"webhooks:rl:t:{snapshot.tenant_id}:{bucket}", tenant_limit),
    ]
    checks = [(key, limit) for key, limit in checks if limit and limit > 0]
    if not checks:
        return Decision(True)
    counts = count([key for key, _ in checks])
    if counts is None:
        return Decision(True)
    for (_, limit), n in zip(checks, counts, strict=True):
        if n > limit:
            return Decision(False, retry_after)
    return Decision(True)


def noise_allowed(snapshot, *, now: float | None = None) -> bool:
    """Whether another rejected/duplicate delivery may be written to the audit this minute."""
    limit = settings.CASTIEL_WEBHOOK_NOISE_AUDIT_PER_MINUTE
    if limit <= 0:
        return True
    bucket, _ = _window(time.time() if now is None else now)
    counts = count([f"webhooks:noise:{snapshot.id}:{bucket}"])
    return counts is None or counts[0] <= limit
