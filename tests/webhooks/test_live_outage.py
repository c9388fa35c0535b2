"""A real database outage under load: the receiver answers 503, never a 2xx it cannot keep.

A live Castiel (gunicorn) runs on a PostgreSQL database of its own, created for this test,
while a sender thread delivers signed webhooks continuously. The test then refuses new
connections to that database and terminates its sessions (only that database: the shared
server and every other database keep running), brings it back, and lets the "provider"
retry what was refused. Every delivery answered 2xx must be stored exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from django.db import connection

from tests.support.processes import REPO, manage, process_env
from tests.support.services import free_port, port_open, require_postgres
from tests.webhooks.live import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "outage-test-secret"
SETUP = """
from castiel.tenancy import services as tenancy
from webhooks import registrations
tenant = tenancy.tenant_create(name="Outage")
registration = registrations.registration_create(
    tenant=tenant, name="gh", scheme="github", secret="%s", rate_limit_per_minute=100000
)
print(registration.pk)
"""


def admin_connection():
    params = connection.settings_dict
    return psycopg.connect(
        host=params.get("HOST") or "127.0.0.1",
        port=params.get("PORT") or 5432,
        user=params.get("USER") or "postgres",
        password=params.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def database_url(name: str) -> str:
    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{params.get('PORT') or 5432}/{name}"


def set_available(name: str, available: bool) -> None:
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(available).lower()}')
        if not available:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )


@pytest.fixture
def outage_database(db, tmp_path):
    require_postgres()
    name = f"castiel_outage_{secrets.token_hex(4)}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = process_env(
        tmp_path,
        DATABASE_URL=database_url(name),
        CASTIEL_SECRET_KEYS=Fernet.generate_key().decode(),
        LOG_LEVEL="WARNING",
    )
    try:
        subprocess.run(manage("migrate", "-v0"), cwd=REPO, env=env, check=True, timeout=300)
        yield name, env
    finally:
        set_available(name, True)
        with admin_connection() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def sign(body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery,
    }


def test_database_outage_gives_503_and_loses_nothing_accepted(outage_database, spawn):
    name, env = outage_database
    setup = subprocess.run(
        manage("shell", "-c", SETUP % SECRET),
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    registration_id = setup.stdout.strip().splitlines()[-1]
    port = free_port()
    web = spawn(
        sys.executable,
        "-m",
        "gunicorn",
        "castiel.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--timeout",
        "60",
        "--log-level",
        "warning",
        env={k: env[k] for k in ("DATABASE_URL", "CASTIEL_SECRET_KEYS", "LOG_LEVEL")},
        name="gunicorn",
    )
    web.wait_for(lambda: port_open("127.0.0.1", port), what="gunicorn")
    url = f"http://127.0.0.1:{port}/webhooks/{registration_id}/"

    results: list[tuple[str, int]] = []
    stop = threading.Event()

    def sender():
        session = requests.Session()
        n = 0
        while not stop.is_set():
            n += 1
            delivery = f"d-{n}"
            body = json.dumps({"action": "opened", "issue": {"id": n}}).encode()
            try:
                status = session.post(url, data=body, headers=sign(body, delivery), timeout=30)
                results.append((delivery, status.status_code))
            except requests.RequestException:
                results.append((delivery, 0))  # no answer is not an acknowledgement
            time.sleep(0.005)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        wait_until(
            lambda: sum(1 for _, s in results if s == 200) >= 20,
            timeout=60,
            what="deliveries before the outage",
        )
        set_available(name, False)
        during_start = len(results)
        wait_until(
            lambda: sum(1 for _, s in results[during_start:] if s == 503) >= 20,
            timeout=60,
            what="503s during the outage",
        )
        # an uncached registration cannot be looked up either: 503, not 404
        unknown = requests.post(
            f"http://127.0.0.1:{port}/webhooks/{uuid.uuid4()}/", data=b"{}", timeout=30
        )
        assert unknown.status_code == 503
        set_available(name, True)
        after_start = len(results)
        wait_until(
            lambda: sum(1 for _, s in results[after_start:] if s == 200) >= 20,
            timeout=60,
            what="deliveries after the outage",
        )
    finally:
        stop.set()
        thread.join()

    statuses = {status for _, status in results}
    assert statuses <= {200, 503, 0}, statuses
    assert 503 in statuses
    # The provider retries everything that was not acknowledged.
    refused = [delivery for delivery, status in results if status != 200]
    session = requests.Session()
    for delivery in refused:
        n = int(delivery.split("-")[1])
        body = json.dumps({"action": "opened", "issue": {"id": n}}).encode()
        assert (
            session.post(url, data=body, headers=sign(body, delivery), timeout=30).status_code
            == 200
        )
    web.stop()

    with psycopg.connect(database_url(name).replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT dedupe_key FROM webhooks_webhookevent WHERE outcome = 'accepted'"
        ).fetchall()
    stored = [row[0] for row in rows]
    assert len(stored) == len(set(stored)), "an accepted delivery was stored twice"
    sent = {delivery for delivery, _ in results}
    assert set(stored) == sent, "every delivery is stored once it was acknowledged"
