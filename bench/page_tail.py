"""Inbound page tail (history INSERT + COMMIT) waited for vs pipelined: a simulation.

What overlapping an inbound page's commit with the next page's Python would give (the worker
does not do it yet).

Raw psycopg against Castiel's real tables in a scratch PostgreSQL (bench/_syncdb.py), N pages
of 1,000 new records each, one connection, alternating runs of two modes:

* **serial** (``baseline``), as the inbound worker does today: the page's COPY into
  ``syncing_record``, its "created" history rows (the same ``INSERT … SELECT`` with its feed
  key), ``COMMIT`` (with the deferred foreign-key checks), then the next page's Python —
  parsing, the canonical JSON and content hash, the uuid5 ids — while the server idles;
* **pipelined** (``value``): the history INSERT and ``COMMIT`` sent in psycopg's pipeline mode
  and their results read only before the next page's COPY, so the server works on page n's
  tail while the same thread does page n+1's Python. One thread: no GIL hand-offs.

``ratio`` is serial seconds / pipelined seconds (medians): above 1, the overlap pays. The
per-page Python here is lighter than the worker's (no mapping rules, dedup or decisions), so
the real gain would be at least this one's in absolute seconds, up to the tail's length.
docs/benchmarks.md ("Session 7") has the figures and what the worker would need.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime

from bench._syncdb import scratch_postgres

PAGE = 1000
COLUMNS = (
    "id, tenant_id, integration_id, entity_type, external_id, data, content_hash, base_data, "
    "base_hash, remote_updated_at, remote_version, local_updated_at, version, deleted_at, "
    "last_pushed_hash, match_keys, seen_generation, synced_at, created_at"
)
HISTORY = (
    "INSERT INTO syncing_recordchange (tenant_id, record_id, integration_id, entity_type, "
    "external_id, action, fields, source, source_id, actor, correlation_id, at, version, txid) "
    "SELECT r.tenant_id, r.id, r.integration_id, r.entity_type, r.external_id, 'created', "
    "'[]'::jsonb, 'run', %s, '', '', %s, r.version, (SELECT GREATEST("
    "pg_current_xact_id()::text::bigint, COALESCE(MAX(txid), 0)) FROM syncing_recordchange "
    "WHERE tenant_id = %s) FROM unnest(%s::uuid[]) WITH ORDINALITY AS page(id, position) "
    "JOIN syncing_record r ON r.id = page.id ORDER BY page.position"
)


def add_arguments(parser):
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternations (serial, pipelined)")


def run(args) -> dict:
    with scratch_postgres():
        from django.db import connection

        from castiel.tenancy.services import tenant_create
        from integrations.models import Integration

        tenant = tenant_create(name="Bench")
        integration = Integration.objects.create(
            tenant=tenant, provider="generic_rest", name="tail", config={"base_url": "x"}
        )
        settings = connection.settings_dict
        dsn = (
            f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} "
            f"dbname={settings['NAME']}"
        )
        scope = (str(tenant.id), str(integration.id))
        times: dict[str, list[float]] = {"serial": [], "pipelined": []}
        for round_ in range(args.rounds):
            for mode in times:
                times[mode].append(_load(dsn, scope, f"{mode}-{round_}", args.pages, mode))
    serial, pipelined = statistics.median(times["serial"]), statistics.median(times["pipelined"])
    return {
        "value": round(args.pages * PAGE / pipelined),
        "baseline": round(args.pages * PAGE / serial),
        "unit": "records/s (baseline: the same pages with the tail waited for)",
        "ratio": round(serial / pipelined, 3),
        "serial_seconds": [round(s, 2) for s in times["serial"]],
        "pipelined_seconds": [round(s, 2) for s in times["pipelined"]],
        "pages": args.pages,
    }


def _python_page(scope, run_id: str, page: int) -> list[tuple]:
    """About what the worker does per record in Python outside the COPY: parsing, the
    canonical JSON and its hash, the record id, the updated-at."""
    from syncing.records.hashing import hashed, record_ids

    tenant, integration = scope
    raw = json.dumps(
        [
            {
                "id": f"{run_id}-{page}-{n}",
                "name": f"Contact {n}",
                "email": f"contact{n}@example.com",
                "phone": "+14155550000",
                "company": f"Company {n % 997}",
                "updatedAt": "2024-01-01T00:00:00.000001Z",
            }
            for n in range(PAGE)
        ]
    )
    record_id = record_ids(tenant, integration, "contacts")
    rows = []
    for item in json.loads(raw):
        text, digest = hashed(item)
        datetime.fromisoformat(item["updatedAt"].replace("Z", "+00:00"))
        rows.append((record_id(item["id"]), item["id"], text, digest))
    return rows


def _load(dsn: str, scope, run_id: str, pages: int, mode: str) -> float:
    import psycopg

    tenant, integration = scope
    with psycopg.connect(dsn) as conn:
        cursor = conn.cursor()
        started = time.perf_counter()
        rows = _python_page(scope, run_id, 0)
        pending = None
        for page in range(pages):
            if pending is not None:
                pending.__exit__(None, None, None)  # the previous page's results
                pending = None
            now = datetime.now(UTC).isoformat()
            with cursor.copy(f"COPY syncing_record ({COLUMNS}) FROM STDIN") as copy:
                for record_id, external_id, text, digest in rows:
                    scoped = (record_id, tenant, integration, "contacts", external_id)
                    rest = (None, digest, now, "", None, 1, None, "", "[]", 0, now, now)
                    copy.write_row((*scoped, text, digest, *rest))
            ids = [row[0] for row in rows]
            if mode == "serial":
                cursor.execute(HISTORY, [run_id, now, tenant, ids])
                conn.commit()
            else:
                pending = conn.pipeline()
                pending.__enter__()
                cursor.execute(HISTORY, [run_id, now, tenant, ids])
                cursor.execute("COMMIT")  # sent; read back before the next COPY
            rows = _python_page(scope, run_id, page + 1)
        if pending is not None:
            pending.__exit__(None, None, None)
        return time.perf_counter() - started
