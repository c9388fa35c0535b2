"""Notifications' cost on the hot paths: ``inbound`` and ``webhooks`` with a watchful tenant
(an immediate subscription to every incident kind, an event subscription to every default
event type) vs the same with none.

Each benchmark runs in its own process (``python -m bench NAME``), alternately without and
with ``CASTIEL_BENCH_SUBSCRIBE=1`` (``bench.support.subscribe_if_asked``); ``ratio`` is the
subscribed/unsubscribed throughput of the worse bench (medians; goal ≥ 0.97, i.e. within
3 %), and ``cpu_ratio`` the same for the server-side CPU per unit of work
(``bench.support.cpu_per_unit``), which another process's load on a shared machine does not
move the way it moves throughput. What it measures: raising events where facts happen (a
sync run's end, a webhook's receipt) and planning their deliveries after commit — the
sending itself is a worker's job and is not part of either path.
"""

from __future__ import annotations

import os

from bench import support


def add_arguments(parser):
    parser.add_argument("--rounds", type=int, default=3, help="off/on alternations per bench")
    parser.add_argument("--webhook-seconds", type=float, default=6.0)
    parser.add_argument("--webhook-rounds", type=int, default=2)
    parser.add_argument("--records", type=int, default=30_000, help="inbound records")
    parser.add_argument("--only", choices=("webhooks", "inbound"), default=None)


def run(args) -> dict:
    off = {k: v for k, v in os.environ.items() if k != support.SUBSCRIBE_ENV}
    on = {**off, support.SUBSCRIBE_ENV: "1"}
    benches = support.hot_path_benches(args)
    results = support.alternate(benches, off, on, args.rounds)
    return support.worst_of(results, "subscribed/unsubscribed throughput (worse bench)")
