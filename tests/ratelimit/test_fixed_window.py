"""The receiver's fixed windows: small limits count every hit; generous ones lease slices of
the window's budget per process — fewer round trips, and never an admission beyond the limit,
whatever the number of processes (against the test run's cache: Redis on PostgreSQL runs)."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.core.cache import cache

from ratelimit import fixed_window
from ratelimit.fixed_window import _Leases, hit, lease_size

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]  # the embedded cache is the DB

NOW = 1_800_000_000.0  # the start of a window


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(fixed_window, "_leases", _Leases())


def key(label: str) -> str:
    """A counter of this test alone (the cache may be a Redis other runs share)."""
    return f"test-fw:{label}:{uuid.uuid4().hex}"


def admitted(name: str, limit: int, hits: int, *, now: float = NOW) -> int:
    return sum(hit([(name, limit)], now=now + i * 0.001).allowed for i in range(hits))


def test_a_small_limit_counts_every_hit():
    name = key("small")
    assert lease_size(999) == 1
    assert admitted(name, 5, 8) == 5
    assert cache.get(f"{name}:{int(NOW // 60)}") == 8  # refused hits count too


def test_a_generous_limit_takes_one_round_trip_per_slice():
    assert lease_size(100_000) == 100
    name = key("big")
    assert admitted(name, 100_000, 1000) == 1000
    # Ten slices of a hundred: ten round trips for a thousand deliveries.
    assert cache.get(f"{name}:{int(NOW // 60)}") == 1000


@pytest.mark.parametrize("processes", [1, 3, 8])
def test_processes_sharing_a_limit_never_admit_more_than_it(monkeypatch, processes):
    limit = 2000  # slices of 20
    tables = [_Leases() for _ in range(processes)]
    turns = itertools.cycle(tables)
    name = key("shared")
    total = 0
    for i in range(3000):
        monkeypatch.setattr(fixed_window, "_leases", next(turns))
        total += hit([(name, limit)], now=NOW + i * 0.001).allowed
    assert total <= limit
    assert total >= limit - processes * lease_size(limit)  # at most one slice each unused


def test_a_new_window_starts_a_new_budget():
    name = key("window")
    assert admitted(name, 1000, 1200) == 1000
    assert admitted(name, 1000, 10, now=NOW + 60) == 10


def test_a_lease_of_one_key_does_not_admit_past_another_keys_small_limit():
    limits = [(key("tenant"), 1_000_000), (key("registration"), 3)]
    results = [hit(limits, now=NOW + i * 0.001).allowed for i in range(5)]
    assert results == [True, True, True, False, False]
