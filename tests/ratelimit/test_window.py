"""The window algorithm itself (Python side), on a controlled clock.

The property tests drive one counter with arbitrary arrival times and costs and check the
promises the limiter makes: no sliding window ever holds more than the limit, a refusal
consumes nothing, and the wait it announces is exact (one millisecond earlier still fails,
at the announced time it succeeds).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimit.backends.local import LocalBackend
from ratelimit.policy import Limit, Policy, Subject

pytestmark = pytest.mark.embedded

SUBJECT = Subject("t", "i", "fetch")


def single_level_policy(limit: int, window: float) -> Policy:
    big = Limit(10**9, window)
    return Policy(
        tenant=big,
        integration=Limit(limit, window),
        operations={"fetch": big},
        default_operation=big,
    )


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self):
        return self.now


def admitted_never_exceed(log: list[tuple[int, int]], limit: int, window_ms: int) -> None:
    """Every window (t - window, t] ending at an admission holds at most ``limit``."""
    start, total = 0, 0
    for end, (t, cost) in enumerate(log):
        total += cost
        while log[start][0] <= t - window_ms:
            total -= log[start][1]
            start += 1
        assert total <= limit, f"window ending at {t} holds {total} > {limit} (end={end})"


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 20),
    window_ms=st.sampled_from([1000, 1500, 60_000, 86_400_000]),
    buckets=st.integers(1, 40),
    steps=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 4)), min_size=1, max_size=150),
)
def test_no_sliding_window_ever_exceeds_the_limit(limit, window_ms, buckets, steps):
    clock = Clock()
    backend = LocalBackend(prefix="p", buckets=buckets, clock=clock)
    policy = single_level_policy(limit, window_ms / 1000)
    log = []
    scale = max(1, window_ms // 1000)
    for gap, cost in steps:
        clock.now += gap * scale
        if backend.acquire(SUBJECT, policy, cost).allowed:
            log.append((clock.now, cost))
    admitted_never_exceed(log, limit, window_ms)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 10),
    buckets=st.integers(1, 30),
    gaps=st.lists(st.integers(0, 300), min_size=1, max_size=60),
    cost=st.integers(1, 3),
)
def test_the_announced_wait_is_exact_and_refusals_consume_nothing(limit, buckets, gaps, cost):
    if cost > limit:
        cost = limit
    clock = Clock()
    backend = LocalBackend(prefix="p", buckets=buckets, clock=clock)
    policy = single_level_policy(limit, 1.0)
    for gap in gaps:
        clock.now += gap
        decision = backend.acquire(SUBJECT, policy, cost)
        if decision.allowed:
            continue
        wait_ms = round(decision.wait * 1000)
        assert wait_ms > 0
        clock.now += wait_ms - 1
        assert not backend.acquire(SUBJECT, policy, cost).allowed, "admitted before the wait"
        clock.now += 1
        assert backend.acquire(SUBJECT, policy, cost).allowed, "refused after the wait"


def test_sustained_saturation_keeps_at_least_b_over_b_plus_1_of_the_limit():
    clock = Clock()
    buckets = 30
    backend = LocalBackend(prefix="p", buckets=buckets, clock=clock)
    policy = single_level_policy(100, 1.0)
    admitted = 0
    end = clock.now + 20_000
    while clock.now < end:
        decision = backend.acquire(SUBJECT, policy)
        if decision.allowed:
            admitted += 1
        else:
            clock.now += max(1, round(decision.wait * 1000))
    assert admitted >= 20 * 100 * buckets / (buckets + 1)
    assert admitted <= 20 * 100


def test_a_cost_above_the_limit_is_rejected_not_waited_for():
    backend = LocalBackend(prefix="p", buckets=10, clock=Clock())
    decision = backend.acquire(SUBJECT, single_level_policy(5, 1.0), cost=6)
    assert decision.outcome == "reject"
    assert decision.level == "integration"


def test_the_local_backend_forgets_idle_counters():
    clock = Clock()
    backend = LocalBackend(prefix="p", buckets=10, clock=clock)
    policy = single_level_policy(5, 1.0)
    for n in range(200):
        backend.acquire(Subject("t", f"i{n}", "fetch"), policy)
    assert len(backend._counts) > 200
    clock.now += 10_000
    for _ in range(1000):
        backend.acquire(SUBJECT, policy)
    assert len(backend._counts) == 3  # only the active integration's levels remain
