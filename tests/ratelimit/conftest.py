"""Fixtures for the rate-limiter tests: backends, a private redis-server, policies."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest
from django.conf import settings

from ratelimit.backends.database import DatabaseBackend
from ratelimit.backends.local import LocalBackend
from ratelimit.policy import Limit, Policy, Subject
from tests.support.services import free_port, port_open, unavailable

BUCKETS = 10


def policy(
    *,
    tenant=(1000, 60),
    integration=(1000, 60),
    fetch=(1000, 60),
    update=(1000, 60),
    delete=(1000, 60),
) -> Policy:
    ops = {
        "fetch": Limit(*fetch),
        "update": Limit(*update),
        "delete": Limit(*delete),
    }
    return Policy(
        tenant=Limit(*tenant),
        integration=Limit(*integration),
        operations=ops,
        default_operation=ops["fetch"],
    )


def subject(tenant_id: str, integration_id: str, operation: str = "fetch") -> Subject:
    return Subject(tenant_id, integration_id, operation)


def new_id() -> str:
    return str(uuid.uuid4())


def unique_prefix() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:t{uuid.uuid4().hex[:8]}"


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("database", marks=pytest.mark.embedded),
        pytest.param("local", marks=pytest.mark.embedded),
    ]
)
def backend(request, db):
    """Each backend, with its own key prefix so runs never share counters.

    (Every variant takes ``db``: requesting it dynamically from a parametrised fixture does
    not set the test database up.)"""
    prefix = unique_prefix()
    if request.param == "redis":
        from ratelimit.backends.redis import RedisBackend

        url = request.getfixturevalue("redis_url")
        made = RedisBackend(url, prefix=prefix, buckets=BUCKETS)
        yield made
        for key in made.client.scan_iter(match=f"{prefix}:*", count=500):
            made.client.delete(key)
        return
    if request.param == "database":
        yield DatabaseBackend(prefix=prefix, buckets=BUCKETS)
        return
    yield LocalBackend(prefix=prefix, buckets=BUCKETS)


class RedisServer:
    """A redis-server of our own on a free port, which tests may stop and start again.

    Never the shared server on 6379: other test runs use it."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    if not shutil.which("redis-server"):
        unavailable("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local_clock():
    """A controllable millisecond clock for the Python backends."""

    class Clock:
        now = 1_700_000_000_000

        def __call__(self) -> int:
            return self.now

        def advance(self, ms: int) -> None:
            self.now += ms

    return Clock()
