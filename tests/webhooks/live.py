"""Helpers for tests that run real servers: localstripe, a live Castiel, a qcluster."""

from __future__ import annotations

import sys
import time

import requests

from credentials.secrets.db import load_keys
from tests.support.processes import manage
from tests.support.services import free_port, port_open

LOCALSTRIPE = (
    "import sys\n"
    "from aiohttp import web\n"
    "from localstripe.resources import Store\n"
    # Keep the store in memory: localstripe 1.15 rewrites one shared /tmp pickle on every
    # write (slow, and shared with anything else running localstripe on this machine).
    "Store.dump_to_disk = lambda self: None\n"
    "from localstripe.server import app\n"
    "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)\n"
)


def wait_port(port: int, proc, timeout: float = 30.0) -> None:
    proc.wait_for(lambda: port_open("127.0.0.1", port), timeout=timeout, what=f"port {port}")


def secret_env() -> dict[str, str]:
    """Subprocesses must decrypt the signing secrets this test process stored."""
    return {"CASTIEL_SECRET_KEYS": ",".join(load_keys())}


def start_localstripe(spawn) -> str:
    port = free_port()
    proc = spawn(
        sys.executable, "-c", LOCALSTRIPE, str(port), env={"NO_PICKLE": "1"}, name="localstripe"
    )
    wait_port(port, proc)
    return f"http://127.0.0.1:{port}"


def start_castiel(spawn, *, env: dict[str, str] | None = None, workers: int = 1) -> tuple:
    port = free_port()
    proc = spawn(
        sys.executable,
        "-m",
        "gunicorn",
        "castiel.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        env={**secret_env(), **(env or {})},
        name="gunicorn",
    )
    wait_port(port, proc)
    return f"http://127.0.0.1:{port}", proc


def start_worker(spawn, env: dict[str, str] | None = None):
    return spawn(
        sys.executable,
        "-m",
        "tests.webhooks.live_worker",
        env={**secret_env(), **(env or {})},
        name="qcluster",
    )


def wait_until(predicate, *, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=10)


__all__ = ["manage", "post", "start_castiel", "start_localstripe", "start_worker", "wait_until"]
