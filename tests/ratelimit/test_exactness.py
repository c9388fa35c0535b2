"""Exactness under real concurrency: 8 processes hammer the limiter for several windows.

Every admitted request is logged with the time the backend admitted it (Redis server time
for Redis, the machine clock for the database backend). The log must show that no sliding
window, at any level, ever held more than that level's limit, and that the binding level was
used to at least 90 % of its capacity — the limiter is exact without being timid.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.ratelimit.conftest import new_id, unique_prefix
from tests.support.processes import database_url

BUCKETS = 20


def _assert_no_window_exceeds(times: list[int], limit: int, window_ms: int, what: str) -> int:
    """Largest count seen in any window (t - window, t] ending at an admission."""
    times = sorted(times)
    start, worst = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window_ms:
            start += 1
        worst = max(worst, end - start + 1)
    assert worst <= limit, f"{what}: a {window_ms} ms window held {worst} > {limit}"
    return worst


def _run(kind: str, url: str, db_url: str, scenario: dict, seconds: float) -> dict:
    from tests.ratelimit.hammer import hammer

    prefix, tenant = unique_prefix(), new_id()
    workers = scenario["workers"]
    context = multiprocessing.get_context("spawn")
    # Children import Django at their own pace; the barrier starts them all at once.
    ready = context.Barrier(len(workers) + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=hammer,
            kwargs={
                "kind": kind,
                "url": url,
                "db_url": db_url,
                "prefix": prefix,
                "buckets": BUCKETS,
                "policy_spec": scenario["policy"],
                "tenant_id": tenant,
                "integration_id": integration,
                "operation": operation,
                "seconds": seconds,
                "eager": index % 2 == 1,
                "ready": ready,
                "results": results,
            },
        )
        for index, (integration, operation) in enumerate(workers)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(timeout=120)
        start_ms = time.time() * 1000
        reports = [results.get(timeout=seconds + 60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    log = [(i, op, t) for i, op, times in reports for t in times]
    return {
        "log": log,
        "start_ms": start_ms,
        "stop_ms": start_ms + seconds * 1000,
        "prefix": prefix,
    }


def _check(result: dict, scenario: dict, binding: tuple[str, str | None]) -> None:
    log, pol = result["log"], scenario["policy"]
    assert log, "nothing was admitted"
    tenant_limit, tenant_window = pol["tenant"]
    _assert_no_window_exceeds([t for *_, t in log], tenant_limit, tenant_window * 1000, "tenant")
    for integration, (limit, window) in pol["integrations"].items():
        times = [t for i, _op, t in log if i == integration]
        _assert_no_window_exceeds(times, limit, window * 1000, f"integration {integration}")
        for op, (op_limit, op_window) in pol["operations"].items():
            op_times = [t for i, o, t in log if i == integration and o == op]
            _assert_no_window_exceeds(op_times, op_limit, op_window * 1000, f"{integration}/{op}")
    # Throughput of the binding level over the run.
    level, which = binding
    if level == "tenant":
        limit, window = pol["tenant"]
        admitted = len(log)
    else:
        limit, window = pol["integrations"][which]
        admitted = len([1 for i, *_ in log if i == which])
    seconds = (result["stop_ms"] - result["start_ms"]) / 1000
    capacity = limit * seconds / window
    assert admitted >= 0.9 * capacity, f"only {admitted} of {capacity:.0f} admitted ({level})"


A, B = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"

ONE_INTEGRATION = {
    # 8 processes on one integration: fetch and update together want more than the
    # integration allows, so the integration level binds; the update limit binds its
    # processes too.
    "policy": {
        "tenant": (1000, 2),
        "integrations": {A: (50, 1)},
        "operations": {"fetch": (40, 1), "update": (20, 1)},
    },
    "workers": [(A, "fetch")] * 4 + [(A, "update")] * 4,
}
TWO_INTEGRATIONS = {
    # The tenant limit (60 per 2 s) binds across two integrations that could each do more.
    "policy": {
        "tenant": (60, 2),
        "integrations": {A: (40, 1), B: (40, 1)},
        "operations": {"fetch": (40, 1), "update": (40, 1)},
    },
    "workers": [(A, "fetch")] * 4 + [(B, "fetch")] * 2 + [(B, "update")] * 2,
}


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario, binding",
    [(ONE_INTEGRATION, ("integration", A)), (TWO_INTEGRATIONS, ("tenant", None))],
    ids=["one-integration", "tenant-across-integrations"],
)
def test_redis_is_exact_across_8_processes(redis_url, scenario, binding):
    import redis

    result = _run("redis", redis_url, "", scenario, seconds=5.0)
    try:
        _check(result, scenario, binding)
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{result['prefix']}:*"):
            client.delete(key)


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_database_backend_is_exact_across_8_processes():
    """SQLite in the embedded profile (BEGIN IMMEDIATE), PostgreSQL in the full suite."""
    result = _run("database", "", database_url(), ONE_INTEGRATION, seconds=5.0)
    _check(result, ONE_INTEGRATION, ("integration", A))
