"""End-to-end pulls from real json-server (1.0 beta and 0.17) into both record stores."""

from __future__ import annotations

import pytest
import requests

from syncing.models import RecordChange, SyncRun
from tests.syncing.helpers import make_integration, make_task, records_of, run_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.node,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def contacts(n: int) -> list[dict]:
    return [
        {
            "id": str(i),
            "name": f"Contact {i}",
            "email": f"c{i}@example.com",
            "updatedAt": f"2024-01-{1 + i // 10:02d}T00:00:{i % 60:02d}.000Z",
        }
        for i in range(1, n + 1)
    ]


# What each version needs: json-server 1.0 pages with _page/_per_page and answers an object
# with `data` and `next`; 0.17 pages with _page/_limit and a Link header, filters with _gte.
CONFIGS = {
    "1": {
        "records_path": "data",
        "updated_at_field": "updatedAt",
        "since_param": "updatedAt:gte",
        "params": {"_sort": "id"},
        "pagination": {
            "style": "page",
            "page_param": "_page",
            "size_param": "_per_page",
            "next_page_path": "next",
            "page_size": 10,
        },
    },
    "017": {
        "updated_at_field": "updatedAt",
        "since_param": "updatedAt_gte",
        "params": {"_sort": "id"},
        "pagination": {
            "style": "link",
            "page_param": "_page",
            "size_param": "_limit",
            "page_size": 10,
        },
    },
}


@pytest.mark.parametrize("version", ["1", "017"])
def test_pull_lands_the_exact_record_set_then_picks_up_changes(
    version, json_server, record_store, tenant, enqueued
):
    rows = contacts(35)
    server = json_server(version, {"contacts": rows})
    task = make_task(make_integration(tenant, server.url, **CONFIGS[version]))

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, run.created) == (4, 35)
    assert records_of(task, store=record_store) == {r["id"]: r for r in rows}

    changed = {**rows[4], "name": "Renamed", "updatedAt": "2024-02-01T00:00:00.000Z"}
    requests.put(f"{server.url}/contacts/5", json=changed, timeout=5).raise_for_status()
    added = {
        "id": "99",
        "name": "New",
        "email": "n@example.com",
        "updatedAt": "2024-02-02T00:00:00.000Z",
    }
    response = requests.post(f"{server.url}/contacts", json=added, timeout=5)
    response.raise_for_status()
    added = response.json()  # json-server 1.0 assigns its own id

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.created, run.updated) == (1, 1)
    assert run.fetched <= 3, "the since filter limits an incremental run to recent changes"
    expected = {r["id"]: r for r in rows} | {"5": changed, str(added["id"]): added}
    assert records_of(task, store=record_store) == expected


def test_full_refresh_soft_deletes_records_gone_from_the_source(
    json_server, record_store, tenant, enqueued
):
    rows = contacts(12)
    server = json_server("1", {"contacts": rows})
    task = make_task(make_integration(tenant, server.url, **CONFIGS["1"]), mode="full")
    assert run_once(task, enqueued).created == 12
    requests.delete(f"{server.url}/contacts/3", timeout=5).raise_for_status()
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.deleted, run.unchanged, run.fetched) == (1, 11, 11)
    assert set(records_of(task, store=record_store)) == {r["id"] for r in rows} - {"3"}
    assert "3" in records_of(task, store=record_store, include_deleted=True)
    # The deletion is in the record's history, so in the change feed too.
    [gone] = RecordChange.objects.filter(source="run", source_id=str(run.pk))
    assert (gone.external_id, gone.action, gone.version) == ("3", "deleted", 2)
