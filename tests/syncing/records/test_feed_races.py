"""The change feed under real concurrency: 8 writer processes (pull pages, webhook upserts,
API edits, deletes and creates, in transactions of random length, some rolled back) and a
follower reading the feed through the API with small pages the whole time. At the end the
follower's copy equals the record table, it got every committed change exactly once and in
commit order per record, and nothing from a rolled-back transaction. PostgreSQL in the full
suite, SQLite in the embedded run; several seeds.

And why the feed is built this way: on PostgreSQL a reader that keeps ``id > cursor`` skips a
change whose transaction took its id first and committed last.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection, transaction

from syncing.models import Record, RecordChange
from syncing.outbound import local_changes
from tests.support.processes import database_url
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.syncing.records.feed_support import settle

URL = "/api/v1/records/changes/"
WRITERS = 8
SECONDS = 6.0
MIN_COMMITTED = 6  # per writer, however slow the machine (the volume asserted below)
EXTERNAL_IDS = [f"r{i}" for i in range(150)]

pytestmark = [pytest.mark.django_db(transaction=True)]


class Follower:
    """Reads the feed with small pages and keeps a copy of the records."""

    def __init__(self, api, limit: int):
        self.api, self.limit = api, limit
        self.cursor = None
        self.received: list[dict] = []
        self.copy: dict[str, dict] = {}
        self.tokens: set[str] = set()

    def read(self) -> bool:
        """One page; whether there is more right now."""
        query = {"limit": self.limit, **({"cursor": self.cursor} if self.cursor else {})}
        response = self.api.get(URL, query)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        for change in body["results"]:
            self.received.append(change)
            record = change["record"]
            if record["deleted_at"]:
                self.copy.pop(record["id"], None)
            else:
                self.copy[record["id"]] = record["data"]
                self.tokens.add(record["data"].get("tx", ""))
        self.cursor = body["next_cursor"]
        return body["has_more"]


def _start_writers(seed: int, task) -> tuple[list, object, object]:
    from tests.syncing.records.feed_writers import write

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(WRITERS + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=write,
            kwargs={
                "db_url": database_url(),
                "seed": seed,
                "writer": writer,
                "task_id": str(task.pk),
                "external_ids": EXTERNAL_IDS,
                "seconds": SECONDS,
                "min_committed": MIN_COMMITTED,
                "ready": ready,
                "results": results,
            },
        )
        for writer in range(WRITERS)
    ]
    for process in processes:
        process.start()
    return processes, ready, results


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_follower_sees_every_committed_change_once_while_8_processes_write(seed, tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": e, "v": 0, "tx": "seed"} for e in EXTERNAL_IDS])
    follower = Follower(api, limit=3 + seed)
    processes, ready, results = _start_writers(seed, task)
    try:
        ready.wait(timeout=120)
        stop_at = time.monotonic() + SECONDS + 1
        while time.monotonic() < stop_at:
            if not follower.read():
                time.sleep(0.02)
        reports = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert sum(r["committed"] for r in reports) > WRITERS * 5, reports
    rolled_back = {token for r in reports for token in r["rolled_back"]}
    assert rolled_back, "the scenario rolls some transactions back"

    # Drain: every writer has ended, so the horizon passes all of their changes (another
    # database's long transaction on the same server could hold it back a little longer).
    committed = set(RecordChange.objects.filter(tenant=tenant).values_list("id", flat=True))
    deadline = time.monotonic() + 60
    while len(follower.received) < len(committed) and time.monotonic() < deadline:
        if not follower.read():
            time.sleep(0.05)
    ids = [change["id"] for change in follower.received]
    print(  # the scenario's size, shown with -s
        f"seed {seed}: {sum(r['committed'] for r in reports)} transactions committed, "
        f"{len(rolled_back)} rolled back, {len(committed)} changes, {len(ids)} received"
    )
    assert len(ids) == len(set(ids)), "a change was served twice"
    assert set(ids) == committed, (
        f"missed {len(committed - set(ids))}, phantom {len(set(ids) - committed)}"
    )
    # Commit order per record: each record's versions never go back in feed order.
    versions = defaultdict(list)
    for change in follower.received:
        versions[change["record_id"]].append(change["version"])
    assert all(v == sorted(v) for v in versions.values()), "a record's changes out of order"
    # Nothing a rolled-back transaction wrote was ever shown.
    assert not (follower.tokens & rolled_back)
    # The copy is the record table.
    table = {
        str(r.id): r.data for r in Record.objects.filter(tenant=tenant, deleted_at__isnull=True)
    }
    assert follower.copy == table


def test_a_naive_id_cursor_would_skip_a_late_commit_the_feed_does_not(postgres, tenant, api):
    """A page transaction writes record "late" (taking the lower history id) and stays open
    while an API edit of another record commits. A reader at ``id > cursor`` moves past both
    ids after reading the edit and never sees "late"; the feed holds the edit back until the
    page commits, then serves both, once."""
    task = task_with(tenant)
    apply_page(task, [{"id": "early", "v": 0}])
    early = stored(task)["early"]
    naive_cursor = RecordChange.objects.filter(tenant=tenant).latest("id").id
    settle()
    feed_cursor = api.get(URL, {"from": "now"}).json()["next_cursor"]

    written, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def slow_page():
        try:
            with transaction.atomic():
                apply_page(task, [{"id": "late", "v": 1}])
                written.set()
                release.wait(30)
        except BaseException as exc:  # surfaced below
            failures.append(exc)
        finally:
            connection.close()

    page = threading.Thread(target=slow_page)
    page.start()
    assert written.wait(30)
    local_changes.record_update(tenant_id=tenant.id, record_id=early.id, data={"v": 2})

    def naive_read(after: int) -> list[RecordChange]:
        return list(RecordChange.objects.filter(tenant=tenant, id__gt=after).order_by("id"))

    seen_naive = naive_read(naive_cursor)
    assert [c.external_id for c in seen_naive] == ["early"]  # the edit: committed, higher id
    naive_cursor = seen_naive[-1].id
    body = api.get(URL, {"cursor": feed_cursor}).json()
    assert body["results"] == [], "the feed waits for the page transaction still open"
    feed_cursor = body["next_cursor"]

    release.set()
    page.join(30)
    assert not failures, failures
    late = RecordChange.objects.get(tenant=tenant, external_id="late")
    assert late.id < naive_cursor, "the page's change took the lower id and committed last"
    assert naive_read(naive_cursor) == [], "the naive reader skipped it for good"

    settle()
    body = api.get(URL, {"cursor": feed_cursor}).json()
    assert sorted((c["external_id"], c["action"]) for c in body["results"]) == [
        ("early", "updated"),
        ("late", "created"),
    ]
