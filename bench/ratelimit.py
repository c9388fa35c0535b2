"""Three-level rate-limit decisions/s vs the `limits` library's moving window, same Redis.

Castiel: ``Limiter.acquire`` as the gate calls it — tenant, integration and operation levels
checked and consumed atomically in one EVALSHA, plus the decision metric and the degraded-mode
wrapper. Baseline: ``limits.strategies.MovingWindowRateLimiter.hit`` on ``RedisStorage`` —
one level. Both run on the same Redis, in the same process, with the same client threads, in
alternating rounds, with limits high enough that every decision admits (the cost of a
decision, not of refusals). The ratio is Castiel's rate over the baseline's.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from bench import support


def add_arguments(parser):
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per limiter")
    parser.add_argument("--seconds", type=float, default=1.0, help="load time per round")
    parser.add_argument("--threads", type=int, default=4, help="client threads")


def _setup_django() -> None:
    data = tempfile.mkdtemp(prefix="castiel-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "castiel.settings")
    os.environ.setdefault("CASTIEL_DATA_DIR", data)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(data, "metrics"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def run(args) -> dict:
    _setup_django()
    import redis
    from limits import RateLimitItemPerHour
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    from ratelimit.backends.local import LocalBackend
    from ratelimit.backends.redis import RedisBackend
    from ratelimit.limiter import Limiter
    from ratelimit.policy import Limit, Policy, Subject

    prefix = f"castiel-bench-{uuid.uuid4().hex[:8]}"
    huge = 10**9
    policy = Policy(
        tenant=Limit(huge, 3600),
        integration=Limit(huge, 3600),
        operations={"fetch": Limit(huge, 3600)},
        default_operation=Limit(huge, 3600),
    )
    limiter = Limiter(
        RedisBackend(args.redis_url, prefix=prefix, buckets=30),
        fallback=LocalBackend(prefix=prefix, buckets=30),
        processes=4,
    )
    subject = Subject(str(uuid.uuid4()), str(uuid.uuid4()), "fetch")

    def castiel_call(_session):
        decision = limiter.acquire(subject, policy, provider="bench")
        assert decision.allowed and not decision.degraded

    storage = RedisStorage(args.redis_url, key_prefix=f"{prefix}-limits")
    moving = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerHour(huge)
    integration_id = str(uuid.uuid4())

    def limits_call(_session):
        assert moving.hit(item, integration_id)

    client = redis.Redis.from_url(args.redis_url)
    # Short alternating rounds (ABBA order) rather than one long run each: a shared machine's
    # load drifts, and alternation exposes both limiters to the same drift.
    measured = {"castiel": [0.0, []], "limits": [0.0, []]}
    calls = {"castiel": castiel_call, "limits": limits_call}
    try:
        for name in ("castiel", "limits"):  # warm up, load scripts
            support.load(calls[name], threads=args.threads, seconds=0.5)
        for round_no in range(args.rounds):
            order = ("castiel", "limits") if round_no % 2 == 0 else ("limits", "castiel")
            for name in order:
                rate, latencies = support.load(
                    calls[name], threads=args.threads, seconds=args.seconds
                )
                measured[name][0] += rate * args.seconds
                measured[name][1].extend(latencies)
    finally:
        for pattern in (f"{prefix}:*", f"{prefix}-limits*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
    total_seconds = args.rounds * args.seconds
    castiel_rate, castiel_lat = measured["castiel"][0] / total_seconds, measured["castiel"][1]
    limits_rate, limits_lat = measured["limits"][0] / total_seconds, measured["limits"][1]
    return {
        "value": round(castiel_rate, 1),
        "baseline": round(limits_rate, 1),
        "unit": "decisions/s",
        "ratio": round(castiel_rate / limits_rate, 3),
        "levels": {"castiel": 3, "baseline": 1},
        "threads": args.threads,
        "p50_ms": round(support.median(castiel_lat) * 1000, 3),
        "p99_ms": round(support.percentile(castiel_lat, 99) * 1000, 3),
        "baseline_p50_ms": round(support.median(limits_lat) * 1000, 3),
        "baseline_p99_ms": round(support.percentile(limits_lat, 99) * 1000, 3),
    }
