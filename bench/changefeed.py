"""Change feed: 100,000 changes read in pages vs a plain keyset SELECT; its cost to inbound.

Read. 100,000 record changes of one tenant, written through the history's own write path in
transactions of 1,000 (each with its own feed key), are read to the end with pages of 1,000:

* Castiel: ``syncing.records.feed.read`` — the horizon (``pg_snapshot_xmin``), the keyset read
  of the ``recordchange_feed`` index below it, the changes as model instances, the next
  position — page after page, as the API does before serialising;
* baseline: ``SELECT * FROM syncing_recordchange WHERE id > %s ORDER BY id LIMIT 1000`` over
  the same table, rows fetched, in the same run (alternating rounds; the best of each).

``--api`` also times the whole endpoint (``GET /api/v1/records/changes/?limit=1000`` in
process: authentication, the read, each change's record from the store, JSON), for the record.

Write (``--inbound N``, 0 to skip). The inbound benchmark's pipeline (``bench/inbound.py``:
claim, worker, page transactions of 1,000, history) run over N new records with the feed as it
is, and without what the feed adds to the history write (its key lookup and the
``recordchange_feed`` index), alternating, in the same scratch database.
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

from bench._syncdb import scratch_postgres


def add_arguments(parser):
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--api", action="store_true", help="also time the HTTP endpoint")
    parser.add_argument(
        "--inbound", type=int, default=50_000, help="records per inbound run (0: skip)"
    )


def run(args) -> dict:
    with scratch_postgres():
        result = _read(args.changes, args.page_size, args.rounds, args.api)
        if args.inbound:
            result.update(_inbound(args.inbound, args.page_size))
        return result


def _write_changes(tenant, total: int, page_size: int) -> None:
    """``total`` changes through ``history._insert`` (COPY + feed key), one transaction per
    page of ``page_size``, as the pull pipeline writes them."""
    from django.db import transaction
    from django.utils import timezone

    from syncing.records import history

    integration_id = uuid.uuid4()
    for offset in range(0, total, page_size):
        now = timezone.now()
        rows = [
            history._values(
                SimpleNamespace(
                    tenant_id=tenant.id,
                    id=uuid.uuid4(),
                    integration_id=integration_id,
                    entity_type="contacts",
                    external_id=str(i),
                    version=1,
                ),
                "created",
                (),
                "run",
                "bench",
                "",
                "",
                now,
            )
            for i in range(offset, min(total, offset + page_size))
        ]
        with transaction.atomic():
            history._insert(rows)


def _read(total: int, page_size: int, rounds: int, api: bool) -> dict:
    from django.db import connection

    from castiel.tenancy.services import tenant_create
    from syncing.records import feed

    tenant = tenant_create(name="Bench")
    started = time.perf_counter()
    _write_changes(tenant, total, page_size)
    write_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE syncing_recordchange")
        cursor.execute("SELECT MAX(txid) FROM syncing_recordchange")
        newest = cursor.fetchone()[0]
    # The horizon is cluster-wide: a long transaction elsewhere on the server holds it back.
    deadline = time.monotonic() + 120
    while feed.horizon().txid < newest:
        if time.monotonic() > deadline:
            raise RuntimeError("the horizon did not pass the written changes (a long transaction?)")
        time.sleep(0.5)

    def castiel() -> int:
        after, seen = feed.START, 0
        while True:
            page = feed.read(tenant.id, after=after, filters=feed.Filters(), limit=page_size)
            seen += len(page.changes)
            after = page.next
            if not page.has_more:
                return seen

    def baseline() -> int:
        last, seen = 0, 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    "SELECT * FROM syncing_recordchange WHERE id > %s ORDER BY id LIMIT %s",
                    [last, page_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    return seen
                seen += len(rows)
                last = rows[-1][0]

    castiel_best = baseline_best = float("inf")
    for _ in range(rounds):
        for name, read in (("castiel", castiel), ("baseline", baseline)):
            started = time.perf_counter()
            assert read() == total, name
            seconds = time.perf_counter() - started
            if name == "castiel":
                castiel_best = min(castiel_best, seconds)
            else:
                baseline_best = min(baseline_best, seconds)
    rate, base_rate = total / castiel_best, total / baseline_best
    result = {
        "value": round(rate),
        "baseline": round(base_rate),
        "unit": "changes/s",
        "ratio": round(rate / base_rate, 3),
        "changes": total,
        "page_size": page_size,
        "castiel_seconds": round(castiel_best, 3),
        "baseline_seconds": round(baseline_best, 3),
        "write_seconds": round(write_seconds, 2),
    }
    if api:
        result.update(_api(tenant, total, page_size))
    return result


def _api(tenant, total: int, page_size: int) -> dict:
    from django.test import Client

    from castiel.tenancy.services import api_key_create

    _key, raw = api_key_create(tenant=tenant, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="localhost")
    started = time.perf_counter()
    cursor, seen = None, 0
    while True:
        query = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/records/changes/", query)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        seen += len(body["results"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert seen == total
    seconds = time.perf_counter() - started
    return {"api_changes_per_s": round(total / seconds), "api_seconds": round(seconds, 2)}


def _inbound(records: int, page_size: int) -> dict:
    """Inbound runs over fresh records with the feed, and without its additions."""
    from unittest import mock

    from django.db import connection

    from syncing.models import RecordChange
    from syncing.records import history

    index = next(i for i in RecordChange._meta.indexes if i.name == "recordchange_feed")

    def without_feed():
        with connection.schema_editor() as editor:
            editor.remove_index(RecordChange, index)
        try:
            with mock.patch.object(history, "_feed_key", lambda cursor, table, tenants: 0):
                return _one_inbound(records, page_size)
        finally:
            with connection.schema_editor() as editor:
                editor.add_index(RecordChange, index)

    best = {"with": 0.0, "without": 0.0}
    for _ in range(2):
        best["with"] = max(best["with"], _one_inbound(records, page_size))
        best["without"] = max(best["without"], without_feed())
    return {
        "inbound_records": records,
        "inbound_with_feed_records_per_s": round(best["with"]),
        "inbound_without_feed_records_per_s": round(best["without"]),
        "inbound_feed_cost": round(1 - best["with"] / best["without"], 3),
    }


def _one_inbound(total: int, page_size: int) -> float:
    """The real claim and inbound worker over ``total`` new records: records per second."""
    from unittest import mock

    from bench.inbound import GeneratedSource
    from castiel.tenancy.services import tenant_create
    from integrations.models import Integration
    from syncing.inbound import preflight, scheduler, worker
    from syncing.models import SyncRun, SyncTask

    tenant = tenant_create(name=f"Inbound {uuid.uuid4().hex[:8]}")
    integration = Integration.objects.create(
        tenant=tenant, provider="generic_rest", name="pipeline", config={"base_url": "http://x/"}
    )
    task = SyncTask.objects.create(tenant=tenant, integration=integration, entity_type="contacts")
    source = GeneratedSource(total, page_size)
    messages = []
    with (
        mock.patch.object(scheduler, "enqueue_many", lambda f, args, kind: messages.extend(args)),
        mock.patch.object(preflight, "adapter_for", source),
    ):
        started = time.perf_counter()
        scheduler.claim([task.id])
        worker.run_claimed(*messages[0])
        seconds = time.perf_counter() - started
    run = SyncRun.objects.get(task=task)
    assert run.status == "succeeded" and run.created == total, run.error_summary
    return total / seconds
