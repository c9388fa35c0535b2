"""Inbound pipeline (claim → pages → dedup → conflicts → upsert → checkpoint) vs raw bulk upsert.

Castiel: a real sync task claimed by the scheduler and run by the inbound worker
(``run_inbound``: lease, page transactions, dedup, conflict check, bulk upsert, checkpoint,
run counters) over N generated records from an in-process source (no HTTP, so the pipeline
is what is measured). Baseline: ``bulk_create(update_conflicts=True)`` of the same N records
(same page size, precomputed ids and hashes) in the same run. PostgreSQL, a scratch database.
RSS is sampled after every page: flat means memory does not grow with the record count.
"""

from __future__ import annotations

import gc
import time

from bench import cpu
from bench._syncdb import peak_rss_mb, rss_mb, scratch_postgres
from bench.support import subscribe_if_asked


def add_arguments(parser):
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)


def generated(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "id": str(i),
            "name": f"Contact {i}",
            "email": f"contact{i}@example.com",
            "phone": f"+1415555{i % 10000:04d}",
            "company": f"Company {i % 997}",
            "updated_at": f"2024-01-01T00:00:00.{i % 1000000:06d}Z",
        }
        for i in range(start, start + n)
    ]


class GeneratedSource:
    """An adapter (the contract's methods) producing ``total`` records, page by page."""

    def __init__(self, total: int, page_size: int):
        self.total, self.page_size = total, page_size
        self.rss: list[float] = []

    def __call__(self, integration, entity_type, client=None):
        return self  # stands in for adapter_for()

    identity_fields = ("id", "updated_at")

    def validate(self):
        pass

    def validate_cursor(self, cursor):
        pass

    def fetch_page(self, cursor, since=None):
        from integrations.adapters.base import Page

        self.rss.append(rss_mb())
        offset = (cursor or {}).get("offset", 0)
        size = min(self.page_size, self.total - offset)
        nxt = {"offset": offset + size} if offset + size < self.total else None
        return Page(records=generated(size, offset), next_cursor=nxt)

    def external_id(self, record):
        return record["id"]

    def updated_at(self, record):
        return record["updated_at"]

    def is_deleted(self, record):
        return False


def run(args) -> dict:
    with scratch_postgres():
        return _measure(args.records, args.page_size)


def _measure(total: int, page_size: int) -> dict:
    from castiel.tenancy.services import tenant_create
    from integrations.models import Integration
    from syncing.models import Record, SyncRun
    from syncing.records.hashing import content_hash, record_id

    tenant = tenant_create(name="Bench")
    subscribed = subscribe_if_asked(tenant)

    def integration(name):
        return Integration.objects.create(
            tenant=tenant, provider="generic_rest", name=name, config={"base_url": "http://x/"}
        )

    # A worker process has run syncs before: one warm-up run of a single page first (imports,
    # the URLconf a notification link loads, connections), so the timings hold what every
    # run costs. Then a full collection: the objects the warm-up's imports left would
    # otherwise trigger one generation-2 collection inside the timed run (70 ms, once).
    _pipeline(integration("warm-up"), page_size, page_size)
    gc.collect()

    # Baseline: raw bulk upsert of the same records, page by page.
    raw_integration = integration("raw")
    started = time.perf_counter()
    for offset in range(0, total, page_size):
        rows = []
        for data in generated(min(page_size, total - offset), offset):
            digest = content_hash(data)
            rows.append(
                Record(
                    id=record_id(tenant.id, raw_integration.id, "contacts", data["id"]),
                    tenant=tenant,
                    integration=raw_integration,
                    entity_type="contacts",
                    external_id=data["id"],
                    data=data,
                    content_hash=digest,
                    base_data=data,
                    base_hash=digest,
                )
            )
        Record.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["data", "content_hash"],
        )
    raw_seconds = time.perf_counter() - started

    # Castiel: the real scheduler claim and inbound worker.
    task, source, pipeline_seconds, (worker_cpu, postgres_cpu) = _pipeline(
        integration("pipeline"), total, page_size
    )
    run = SyncRun.objects.get(task=task)
    assert run.status == "succeeded", run.error_summary
    assert run.created == total == Record.objects.filter(integration=task.integration).count()

    tenth = max(1, len(source.rss) // 10)
    rate, raw_rate = total / pipeline_seconds, total / raw_seconds
    return {
        "value": round(rate),
        "baseline": round(raw_rate),
        "unit": "records/s",
        "ratio": round(rate / raw_rate, 3),
        "records": total,
        "page_size": page_size,
        "pipeline_seconds": round(pipeline_seconds, 2),
        # CPU-ms per 1,000 records, per process group (bench.support.alternate compares these).
        "cpu_ms_per_1k_records": {
            "worker": round(worker_cpu * 1e6 / total, 1),
            "postgres": round(postgres_cpu * 1e6 / total, 1),
        },
        "raw_seconds": round(raw_seconds, 2),
        "rss_before_mb": round(source.rss[0], 1),
        "rss_at_10pct_mb": round(source.rss[tenth], 1),
        "rss_at_end_mb": round(source.rss[-1], 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "subscribed": subscribed,
    }


def _pipeline(integration, total: int, page_size: int):
    """One sync task over ``total`` generated records through the real scheduler claim and
    inbound worker: the task, the source, the seconds it took and the CPU it used (this
    process, PostgreSQL's backends)."""
    from unittest import mock

    from castiel.observability import tracing
    from syncing.inbound import preflight, scheduler, worker
    from syncing.models import SyncTask

    task = SyncTask.objects.create(
        tenant=integration.tenant, integration=integration, entity_type="contacts"
    )
    source = GeneratedSource(total, page_size)
    source.rss.append(rss_mb())
    messages = []
    # CPU spent on the pipeline: this process (the worker's code) and PostgreSQL's backends —
    # a steadier measure of its cost than the wall-clock rate on a shared machine.
    cpu_before, pg_before = time.process_time(), cpu.snapshot().get("postgres", 0.0)
    with (
        mock.patch.object(scheduler, "enqueue_many", lambda f, args, kind: messages.extend(args)),
        mock.patch.object(preflight, "adapter_for", source),
    ):
        started = time.perf_counter()
        scheduler.claim([task.id])
        # A worker runs this inside its task's span (castiel.queue.run): the same here, so
        # with tracing on (bench/tracing.py) the statements are traced as in production.
        with tracing.span("bench.inbound"):
            worker.run_claimed(*messages[0])
        seconds = time.perf_counter() - started
    used = (
        time.process_time() - cpu_before,
        cpu.snapshot().get("postgres", 0.0) - pg_before,
    )
    return task, source, seconds, used
