"""docs/api.md's change-feed consumer and event-webhook receiver, run as written (extracted
from the page) against a live server: the consumer's copy equals the records after a first
synchronisation, after creates, edits and deletes, and after a 410 that makes it
resynchronise; the receiver verifies real sync.completed events with ``standardwebhooks``,
refuses a forged one, and reads exactly each run's changes with the cursor they carry."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from notifications import delivery
from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import Record, RecordChange
from syncing.outbound import local_changes
from syncing.records import history
from tests.conftest import client_for
from tests.support.services import free_port
from tests.syncing.helpers import make_task, run_once, sandbox_integration
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.syncing.records.feed_support import settle

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def consumer_code(heading: str = "Following the change feed") -> str:
    section = DOC.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def table(tenant) -> dict:
    return {
        str(r.id): r.data for r in Record.objects.filter(tenant=tenant, deleted_at__isnull=True)
    }


def test_the_documented_consumer_keeps_an_exact_copy(tenant, live_server, tmp_path):
    script = tmp_path / "consumer.py"
    script.write_text(consumer_code())
    state = tmp_path / "copy.json"
    env = {
        "CASTIEL_URL": live_server.url,
        "CASTIEL_API_KEY": client_for(tenant).raw_key,
        "CASTIEL_STATE": str(state),
        "CASTIEL_UNTIL_HEAD": "1",
        "PATH": "/usr/bin:/bin",
    }

    def run() -> dict:
        settle()
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(state.read_text())

    task = task_with(tenant)
    apply_page(task, [{"id": str(i), "n": i} for i in range(12)])
    first = run()
    assert first["records"] == table(tenant) and len(first["records"]) == 12

    records = stored(task)
    local_changes.record_update(tenant_id=tenant.id, record_id=records["3"].id, data={"n": 33})
    local_changes.record_delete(tenant_id=tenant.id, record_id=records["4"].id)
    apply_page(task, [{"id": "5", "n": 55}, {"id": "12", "n": 12}, {"id": "6", "deleted": True}])
    assert run()["records"] == table(tenant)

    # Stopped for longer than the retention: its cursor is behind changes that were pruned.
    stale = dict(first)
    apply_page(task, [{"id": "13", "n": 13}])
    RecordChange.objects.update(at=timezone.now() - timedelta(days=365))
    assert history.prune() > 0
    api = client_for(tenant)
    assert api.get("/api/v1/records/changes/", {"cursor": stale["cursor"]}).status_code == 410
    state.write_text(json.dumps(stale))
    again = run()
    assert again["records"] == table(tenant) and again["cursor"] != stale["cursor"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_documented_event_receiver_verifies_events_and_reads_each_runs_changes(
    tenant, live_server, tmp_path, sandbox, enqueued
):
    api = client_for(tenant)
    port = free_port()
    channel = api.post(
        "/api/v1/notification-channels/",
        {"name": "our app", "type": "webhook", "url": f"http://127.0.0.1:{port}/castiel"},
        format="json",
    ).json()
    subscribed = api.post(
        "/api/v1/event-subscriptions/",
        {"name": "sync results", "channel": channel["id"], "event_types": ["sync.completed"]},
        format="json",
    )
    assert subscribed.status_code == 201, subscribed.json()
    script = tmp_path / "receiver.py"
    script.write_text(consumer_code("Event webhooks"))
    log = tmp_path / "events.jsonl"
    env = {
        "CASTIEL_URL": live_server.url,
        "CASTIEL_API_KEY": api.raw_key,
        "CASTIEL_SIGNING_SECRET": channel["signing_secret"],
        "CASTIEL_EVENTS_LOG": str(log),
        "PORT": str(port),
        "PATH": "/usr/bin:/bin",
    }
    receiver = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        account = sandbox.account()
        sandbox.seed(account, 12)
        task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
        first = run_once(task, enqueued)
        objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
        sandbox_services.object_update(obj=objs[2], data={"email": "new@example.com"})
        sandbox_services.object_delete(obj=objs[5])
        second = run_once(task, enqueued)
        settle()
        delivery.work_channel(channel["id"], budget=30)
        lines = [json.loads(line) for line in log.read_text().splitlines()]

        forged = requests.post(
            f"http://127.0.0.1:{port}/castiel",
            data=b'{"type":"sync.completed","timestamp":"2026-01-01T00:00:00Z","data":{}}',
            headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
            timeout=10,
        )
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    assert forged.status_code == 400
    assert [line["run"] for line in lines] == [str(first.pk), str(second.pk)]
    assert lines[0]["counts"]["created"] == 12
    assert sorted(lines[0]["changes"]) == sorted(["created", str(o.pk)] for o in objs)
    assert sorted(lines[1]["changes"]) == [
        ["deleted", str(objs[5].pk)],
        ["updated", str(objs[2].pk)],
    ]


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the receiver did not listen on {port}")
