"""Local record writes: N updates through the batch API and service vs Django bulk_update.

Three sets of N identical records (same tenant, one integration each, so no path sees another's
outbox rows) in a scratch PostgreSQL database (bench/_syncdb.py), each updated once, in batches
of ``--batch-size`` (one transaction per batch):

* ``api``: ``POST /api/v1/records/batch/`` through the in-process WSGI handler (API-key
  authentication, DRF, the body's checks, the service, the JSON answer), the bodies
  JSON-encoded before the clock starts;
* ``service``: ``syncing.outbound.batch_changes.records_write_batch`` — each record read and
  locked, checked, merged, its outbox row, the record upsert and its history row (the change
  feed), set-based;
* baseline: ``Record.objects.bulk_update`` of the same fields (data, content hash, local
  update time, version) plus ``OutboundChange.objects.bulk_create`` of as many outbox rows —
  the least a transactional outbox must write, without history, checks or locks.

The ratio is the API's rate over the baseline's (the issue's goal: at least 0.5); the service's
rate is reported beside it. The dispatcher's wake-up is switched off (no broker here), as in
``bench outbound``. For comparison, the single-record path (``local_changes.record_update``)
is timed over ``--singles`` records.
"""

from __future__ import annotations

import json
import time

from bench import support
from bench._syncdb import scratch_postgres


def add_arguments(parser):
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--singles", type=int, default=1000, help="single-record updates timed (0: skip)"
    )


def run(args) -> dict:
    with scratch_postgres():
        return _measure(args)


def _records(tenant, name: str, n: int):

    from integrations.models import Integration

    integration = Integration.objects.create(
        tenant=tenant, provider="generic_rest", name=name, config={"base_url": "http://sink"}
    )
    rows = support.synced_contacts(tenant, integration, n)
    return integration, rows


def _chunks(rows, size):
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _baseline(tenant, rows, size) -> float:
    from django.db import transaction
    from django.utils import timezone

    from syncing.models import OutboundChange
    from syncing.records.hashing import content_hash

    started = time.perf_counter()
    for chunk in _chunks(rows, size):
        now = timezone.now()
        with transaction.atomic():
            changes = []
            for row in chunk:
                row.data = {**row.data, "name": row.data["name"] + "!"}
                row.content_hash = content_hash(row.data)
                row.local_updated_at = now
                row.version += 1
                changes.append(
                    OutboundChange(
                        tenant=tenant,
                        integration_id=row.integration_id,
                        entity_type=row.entity_type,
                        record_id=row.id,
                        external_id=row.external_id,
                        operation="update",
                        fields=["name"],
                        seq=row.version,
                        origin="api",
                    )
                )
            type(chunk[0]).objects.bulk_update(
                chunk, ["data", "content_hash", "local_updated_at", "version"]
            )
            OutboundChange.objects.bulk_create(changes)
    return time.perf_counter() - started


def _service(tenant, rows, size) -> float:
    from syncing.outbound.batch_changes import BatchItem, records_write_batch

    started = time.perf_counter()
    for chunk in _chunks(rows, size):
        items = [
            BatchItem("update", record_id=row.id, data={"name": row.data["name"] + "!"})
            for row in chunk
        ]
        result = records_write_batch(tenant_id=tenant.id, items=items, origin="api")
        assert result.failed == 0
    return time.perf_counter() - started


def _api(tenant, rows, size) -> float:
    from django.test import Client

    from castiel.tenancy.services import api_key_create

    _key, raw = api_key_create(tenant=tenant, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="127.0.0.1")
    bodies = [
        json.dumps(
            {
                "items": [
                    {"op": "update", "id": str(row.id), "data": {"name": row.data["name"] + "!"}}
                    for row in chunk
                ]
            }
        )
        for chunk in _chunks(rows, size)
    ]
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/records/batch/", body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        assert json.loads(response.content)["failed"] == 0
    return time.perf_counter() - started


def _singles(tenant, rows) -> float:
    from syncing.outbound import local_changes

    started = time.perf_counter()
    for row in rows:
        local_changes.record_update(
            tenant_id=tenant.id, record_id=row.id, data={"name": row.data["name"] + "!"}
        )
    return time.perf_counter() - started


def _measure(args) -> dict:
    from unittest import mock

    from castiel.tenancy.services import tenant_create
    from syncing.models import OutboundChange, RecordChange
    from syncing.records import outbox

    n, size = args.updates, args.batch_size
    tenant = tenant_create(name="Bench")
    _i, base_rows = _records(tenant, "baseline", n)
    _i, service_rows = _records(tenant, "service", n)
    _i, api_rows = _records(tenant, "api", n)
    _i, single_rows = _records(tenant, "singles", args.singles) if args.singles else (None, [])

    with mock.patch.object(outbox, "request_dispatch", lambda: None):
        # Warm-up outside the clock (imports, the first COPY's staging table, the API stack).
        _warm, warm_rows = _records(tenant, "warm-up", 2 * min(size, 100))
        _service(tenant, warm_rows[: len(warm_rows) // 2], size)
        _api(tenant, warm_rows[len(warm_rows) // 2 :], size)

        baseline_seconds = _baseline(tenant, base_rows, size)
        service_seconds = _service(tenant, service_rows, size)
        api_seconds = _api(tenant, api_rows, size)
        single_seconds = _singles(tenant, single_rows) if single_rows else None

    # Every update of both paths left its outbox row and its history row.
    for name, rows in (("service", service_rows), ("api", api_rows)):
        ids = [r.id for r in rows]
        assert OutboundChange.objects.filter(record_id__in=ids).count() == n, name
        assert RecordChange.objects.filter(record_id__in=ids, action="updated").count() == n, name

    rate, baseline = n / api_seconds, n / baseline_seconds
    result = {
        "value": round(rate),
        "baseline": round(baseline),
        "unit": "updates/s",
        "ratio": round(rate / baseline, 3),
        "updates": n,
        "batch_size": size,
        "api_seconds": round(api_seconds, 2),
        "service_seconds": round(service_seconds, 2),
        "service_updates_per_s": round(n / service_seconds),
        "service_ratio": round((n / service_seconds) / baseline, 3),
        "baseline_seconds": round(baseline_seconds, 2),
    }
    if single_seconds:
        result["single_updates_per_s"] = round(len(single_rows) / single_seconds)
    return result
