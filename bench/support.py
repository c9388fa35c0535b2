"""Helpers shared by benchmarks: a scratch environment, servers, load loops, statistics."""

from __future__ import annotations

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
