"""The README's first command, end to end: scripts/run on the embedded default."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing

import requests

from tests.support.processes import REPO
from tests.support.services import free_port


def test_scripts_run_brings_up_the_product_and_ctrl_c_stops_it(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CASTIEL_QUEUE_NAME", "CACHE_KEY_PREFIX")
    }
    env.update(
        CASTIEL_PORT=str(port),
        CASTIEL_DATA_DIR=str(tmp_path / "data"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "data" / "metrics"),
    )
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(
        ["scripts/run"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        output = (tmp_path / "run.log").read_text()
        assert health is not None and health.status_code == 200, output
        assert health.json()["checks"]["workers"]["status"] == "ok"

        password = re.search(r"user: admin\s+password: (\S+)", output).group(1)
        key = re.search(r"Demo tenant key\s+(\S+)", output).group(1)
        assert json.loads((tmp_path / "data" / "demo-credentials.json").read_text())

        session = requests.Session()
        login_page = session.get(f"{base}/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        logged_in = session.post(
            f"{base}/admin/login/?next=/admin/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/admin/login/"},
        )
        assert logged_in.url.rstrip("/").endswith("/admin") and "Log out" in logged_in.text

        assert requests.get(f"{base}/api/docs/").status_code == 200
        ok = requests.get(f"{base}/api/v1/tenant/", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and ok.json()["slug"] == "demo"
        wrong = requests.get(f"{base}/api/v1/tenant/", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "authentication_failed"

        # The demo runs by itself through the real qcluster: records arrive from the sandbox,
        # and the sandbox-activity schedule's signed webhooks are received and processed.
        auth = {"Authorization": f"Bearer {key}"}
        records = _eventually(
            lambda: requests.get(
                f"{base}/api/v1/records/", {"entity_type": "contacts"}, headers=auth
            ).json()["count"],
            seconds=60,
        )
        assert records > 0, (tmp_path / "run.log").read_text()[-3000:]
        processed = _eventually(
            lambda: requests.get(
                f"{base}/api/v1/webhook-events/", {"status": "processed"}, headers=auth
            ).json()["count"],
            seconds=90,
        )
        assert processed > 0, (tmp_path / "run.log").read_text()[-3000:]

        # The recurring work starts by itself (migrate created its schedules): the scheduler
        # tick runs the contacts task again (trigger "schedule"), and the token refresh and
        # the reapers have each run successfully.
        scheduled = _eventually(
            lambda: requests.get(
                f"{base}/api/v1/sync-runs/", {"trigger": "schedule"}, headers=auth
            ).json()["count"],
            seconds=150,
        )
        assert scheduled > 0, (tmp_path / "run.log").read_text()[-3000:]
        ran = _eventually(
            lambda: _recurring_successes(tmp_path / "data" / "castiel.sqlite3") >= RECURRING,
            seconds=60,
        )
        assert ran, _recurring_successes(tmp_path / "data" / "castiel.sqlite3")
        assert requests.get(f"{base}/healthz").json()["checks"]["schedules"]["status"] == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        proc.wait(timeout=60)
        log.close()
    leftovers = subprocess.run(
        ["pgrep", "-f", f"runserver 127.0.0.1:{port}"], capture_output=True, text=True
    )
    assert leftovers.stdout == "", "the web server survived Ctrl-C"
    assert proc.returncode == 0


RECURRING = {
    "castiel:sync-scheduler-tick",
    "castiel:sync-reaper",
    "castiel:outbound-tick",
    "castiel:credentials.refresh_due",
}


def _recurring_successes(database) -> set[str]:
    """Castiel schedules whose last launched task finished successfully (django-q2 keeps the
    task id on the schedule row)."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
        rows = db.execute(
            "SELECT s.name FROM django_q_schedule s JOIN django_q_task t ON t.id = s.task "
            "WHERE s.name LIKE 'castiel:%' AND t.success"
        ).fetchall()
    return {name for (name,) in rows}


def _eventually(read, *, seconds: float):
    """``read()`` until it is truthy or ``seconds`` have passed; the last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while not value and time.monotonic() < deadline:
        time.sleep(1)
        value = read()
    return value
