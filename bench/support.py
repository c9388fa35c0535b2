"""Helpers shared by benchmarks: a scratch environment, servers, load loops, statistics."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def scratch_env(**overrides: str) -> dict[str, str]:
    """An embedded-profile environment in a fresh temporary data folder (unless overridden)."""
    data = Path(tempfile.mkdtemp(prefix="castiel-bench-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "castiel.settings",
        "CASTIEL_DATA_DIR": str(data),
        "PROMETHEUS_MULTIPROC_DIR": str(data / "metrics"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, capture: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=capture,
        text=True,
    )
    return result.stdout if capture else ""


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str | None = None):
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if ready_url:
            wait_http(ready_url)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def load(
    call: Callable[[requests.Session], None], *, threads: int, seconds: float
) -> tuple[float, list[float]]:
    """Run ``call`` from ``threads`` threads for ``seconds``: (calls/s, latencies in s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        session = requests.Session()
        local = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            call(session)
            local.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_in_process(name: str, args: list[str], env: dict[str, str]) -> dict:
    """Run ``python -m bench NAME ARGS`` in a process of its own and return its result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench", name, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def hot_path_benches(args) -> dict[str, list[str]]:
    """``webhooks`` and ``inbound`` with the sizes an off/on comparison takes from ``args``
    (``webhook_seconds``, ``webhook_rounds``, ``records``, ``only``): no steady phase."""
    benches = {
        "webhooks": [
            "--seconds",
            str(args.webhook_seconds),
            "--rounds",
            str(args.webhook_rounds),
            "--steady-seconds",
            "0",
        ],
        "inbound": ["--records", str(args.records)],
    }
    return {args.only: benches[args.only]} if args.only else benches


def alternate(benches: dict[str, list[str]], off: dict, on: dict, rounds: int) -> dict:
    """Each bench alternately with environment ``off`` and ``on`` (other load on the machine
    weighs on both alike), in ABBA order; per bench the values and the ratio of the medians,
    on/off, and the same for the CPU each unit of work cost (:func:`cpu_per_unit`) where the
    bench reports it: ``cpu_ratio`` is off/on, so like ``ratio`` it is below 1 when ``on``
    costs more."""
    results: dict[str, dict] = {}
    for name, bench_args in benches.items():
        offs, ons, cpu_off, cpu_on = [], [], [], []
        sides = [(offs, cpu_off, off), (ons, cpu_on, on)]
        for n in range(rounds):
            # ABBA order: whatever favours the first (or second) run of a pair favours each
            # side alike.
            for values, cpus, env in sides if n % 2 == 0 else sides[::-1]:
                result = bench_in_process(name, bench_args, env)
                values.append(result["value"])
                cost = cpu_per_unit(result)
                if cost is not None:
                    cpus.append(cost)
        results[name] = {"off": offs, "on": ons, "ratio": round(median(ons) / median(offs), 3)}
        if cpu_off and cpu_on:
            results[name].update(
                cpu_unit=CPU_UNITS[name],
                cpu_off=cpu_off,
                cpu_on=cpu_on,
                cpu_ratio=round(median(cpu_off) / median(cpu_on), 3),
            )
    return results


def worst_of(results: dict, unit: str) -> dict:
    """The summary of :func:`alternate`'s ``results``: the worse bench's on/off throughput
    ratio (``value`` and ``ratio``) and CPU ratio, and the results themselves."""
    worst = min(r["ratio"] for r in results.values())
    cpu_ratios = [r["cpu_ratio"] for r in results.values() if "cpu_ratio" in r]
    return {
        "value": worst,
        "baseline": 1.0,
        "unit": unit,
        "ratio": worst,
        "cpu_ratio": min(cpu_ratios) if cpu_ratios else None,
        "results": results,
    }


CPU_UNITS = {"webhooks": "server CPU-ms per delivery", "inbound": "CPU-ms per 1,000 records"}


def cpu_per_unit(result: dict) -> float | None:
    """The CPU a bench's unit of work cost on the server side, summed over process groups: a
    delivery's in the web workers, PostgreSQL and Redis (not the load generator); 1,000
    inbound records' in the worker and PostgreSQL. Steadier than throughput on a shared
    machine, where another process's load slows the wall clock but not the work done."""
    if "cpu_ms_per_request" in result:
        groups = result["cpu_ms_per_request"].get("webhook", {})
        return round(sum(v for g, v in groups.items() if g in ("web", "postgres", "redis")), 3)
    if "cpu_ms_per_1k_records" in result:
        return round(sum(result["cpu_ms_per_1k_records"].values()), 1)
    return None


SUBSCRIBE_ENV = "CASTIEL_BENCH_SUBSCRIBE"


def subscribe_if_asked(tenant) -> bool:
    """With ``CASTIEL_BENCH_SUBSCRIBE=1`` (bench/notifications.py), give ``tenant`` what a
    watchful tenant has: an immediate subscription to every incident kind from ``info`` up and
    an event subscription to every default event type, on a signed-webhook channel. Rows are
    written directly (the channel's URL is never called: no worker runs in these benches, so
    deliveries are planned, not sent)."""
    if os.environ.get(SUBSCRIBE_ENV) != "1":
        return False
    from notifications.models import Channel, EventSubscription, Subscription

    channel = Channel.objects.create(
        tenant=tenant, name="bench", type="webhook", url="https://hooks.example.com/castiel"
    )
    Subscription.objects.create(tenant=tenant, name="everything", channel=channel, min_severity=10)
    EventSubscription.objects.create(tenant=tenant, name="app", channel=channel)
    return True


def synced_contacts(tenant, integration, n: int) -> list:
    """``n`` contacts of ``integration`` as a finished sync leaves them (data = base, synced
    now), written with one ``bulk_create``: the starting point of the write benchmarks."""
    from django.utils import timezone

    from syncing.models import Record
    from syncing.records.hashing import content_hash, record_id

    now = timezone.now()
    rows = []
    for i in range(n):
        data = {"id": str(i), "name": f"Contact {i}", "email": f"c{i}@example.com"}
        rows.append(
            Record(
                id=record_id(tenant.id, integration.id, "contacts", str(i)),
                tenant=tenant,
                integration=integration,
                entity_type="contacts",
                external_id=str(i),
                data=data,
                content_hash=content_hash(data),
                base_data=data,
                base_hash=content_hash(data),
                synced_at=now,
            )
        )
    Record.objects.bulk_create(rows, batch_size=2000)
    return rows
