"""docs/api.md's change-feed consumer, run as written (extracted from the page) against a live
server: its copy equals the records after a first synchronisation, after creates, edits and
deletes, and after a 410 that makes it resynchronise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from syncing.models import Record, RecordChange
from syncing.outbound import local_changes
from syncing.records import history
from tests.conftest import client_for
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.syncing.records.feed_support import settle

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def consumer_code() -> str:
    section = DOC.read_text().split("## Following the change feed", 1)[1].split("\n## ", 1)[0]
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
