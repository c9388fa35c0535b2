"""Start real Castiel processes (qcluster, runserver, gunicorn) against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """A DATABASE_URL for the test database pytest-django created."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def process_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a subprocess sharing this test's database, cache prefix and queue."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "castiel.settings",
        "DATABASE_URL": database_url(),
        "CASTIEL_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": settings.SECRET_KEY,
        "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
        "CASTIEL_QUEUE_NAME": settings.Q_CLUSTER["name"],
        "PROMETHEUS_MULTIPROC_DIR": settings.PROMETHEUS_MULTIPROC_DIR,
        "PYTHONUNBUFFERED": "1",
    }
    if settings.CASTIEL_SECRET_STORE == "db":
        # The child reads the secrets this process stored (a channel's webhook URL, a
        # credential): the same keys, whatever data folder it is given.
        from credentials.secrets.db import load_keys

        env["CASTIEL_SECRET_KEYS"] = ",".join(load_keys())
    env.update(overrides)
    return env


class Process:
    """A child process whose combined output goes to a log file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.popen.poll() is not None:
                code = self.popen.returncode
                raise AssertionError(f"exited ({code}) before {what}:\n{self.output[-4000:]}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group at once (a crash: no shutdown code runs)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        """Orderly stop: SIGTERM to the main process only (it stops its own children; a
        signal to the whole group can kill django-q2's sentinel mid-shutdown), then SIGKILL
        whatever is left in the group."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.popen.poll() is None:
            self.popen.wait(timeout=30)
        self._log.close()


def manage(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "manage.py"), *args]
