"""Inbound pull vs a data engineer's tool: json-server → PostgreSQL by Castiel and by dlt.

The same N generated contacts are served by json-server 1.0 (tests/node/node_modules, the
server script the tests start; ``--page-size`` per page) and pulled into the same scratch
PostgreSQL (bench/_syncdb.py), alternately by

* **Castiel**: an incremental sync task of a ``generic_rest`` integration against the
  json-server, claimed as "run now" does and run by a real ``manage.py qcluster`` (Redis
  broker): lease, page fetch, mapping, dedup, conflict check, record upsert, history,
  checkpoint — timed from the claim until the run is seen succeeded;
* **dlt** (``rest_api`` source → ``postgres`` destination, ``merge`` on ``id``), in this
  process, timed around ``pipeline.run``.

Each run writes into fresh tables (a new integration; a new dlt dataset), so both load N new
records every time. Reported: records/s of each (median over the rounds), the ratio
Castiel/dlt (goal ≥ 1.0), bytes on disk per record (``pg_total_relation_size`` of the tables
each wrote, indexes and TOAST included; dlt's staging dataset reported apart), and the load
average before and after (the machine is shared).

dlt is not a dependency of Castiel: ``pip install "dlt[postgres]"`` first; without it the
bench says so and stops.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench._syncdb import scratch_postgres
from bench.outbound_batch import _stop, _wait_for_workers
from bench.support import REPO

NODE_MODULES = REPO / "tests" / "node" / "node_modules"
SERVER_SCRIPT = REPO / "tests" / "syncing" / "servers" / "json_server.mjs"
DLT_SCHEMA_PREFIX = "dlt_peer"
CASTIEL_TABLES = ("syncing_record", "syncing_recordkey", "syncing_recordchange")


def add_arguments(parser):
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="alternations (Castiel, dlt)")
    parser.add_argument("--workers", type=int, default=1, help="qcluster worker processes")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def contacts(n: int) -> list[dict]:
    return [
        {
            "id": str(i),
            "name": f"Contact {i}",
            "email": f"contact{i}@example.com",
            "phone": f"+1415555{i % 10000:04d}",
            "company": f"Company {i % 997}",
            "updatedAt": f"2024-01-01T00:00:00.{i % 1000000:06d}Z",
        }
        for i in range(1, n + 1)
    ]


def run(args) -> dict:
    try:
        import dlt  # noqa: F401 - only to say clearly that it is missing
    except ImportError:
        sys.exit('bench inbound_peer: dlt is not installed (pip install "dlt[postgres]")')
    if not (NODE_MODULES / "json-server").exists():
        sys.exit("bench inbound_peer: json-server is missing (run `npm ci` in tests/node)")
    env = {"REDIS_URL": args.redis_url, "Q_WORKERS": str(args.workers)}
    load_before = os.getloadavg()
    with scratch_postgres(**env), json_server(contacts(args.records)) as server:
        result = _measure(args, server)
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


class json_server:
    """json-server 1.0 on a free loopback port, serving ``rows`` as /contacts."""

    def __init__(self, rows: list[dict]):
        self.folder = Path(tempfile.mkdtemp(prefix="castiel-peer-"))
        self.db = self.folder / "db.json"
        self.db.write_text(json.dumps({"contacts": rows}))

    def __enter__(self) -> json_server:
        self.proc = subprocess.Popen(
            ["node", str(SERVER_SCRIPT), "1", str(self.db)],
            cwd=REPO,
            env={**os.environ, "CASTIEL_NODE_MODULES": str(NODE_MODULES)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("LISTENING "):
            _stop(self.proc)
            raise RuntimeError(f"json-server did not start: {line!r}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.url = f"http://127.0.0.1:{line.split()[1]}"
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc)


class CpuSampler:
    """CPU seconds per process group during one run: the qcluster (every process of its
    session), the json-server, the PostgreSQL backends serving the scratch database (sampled
    every 0.2 s from /proc: dlt's connections close when its load ends), and this process
    (where dlt runs). Linux only; a group that cannot be read counts 0."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, worker_pgid: int, server_pid: int):
        self.worker_pgid, self.server_pid = worker_pgid, server_pid

    def _ticks(self, pid: int) -> tuple[int, int]:
        """(process group, utime + stime) of ``pid``, or (-1, 0) when it is gone."""
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return -1, 0
        return int(fields[2]), int(fields[11]) + int(fields[12])

    def _sample(self, backends: list[int]) -> None:
        for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
            group, ticks = self._ticks(pid)
            if group == self.worker_pgid:
                self.seen[("worker", pid)] = ticks
        self.seen[("json-server", self.server_pid)] = self._ticks(self.server_pid)[1]
        for pid in backends:
            ticks = self._ticks(pid)[1]
            if ticks:
                self.seen[("postgres", pid)] = ticks

    def __enter__(self):
        import psycopg
        from django.db import connection

        self.seen: dict[tuple[str, int], int] = {}
        self.stop = threading.Event()
        database = connection.settings_dict["NAME"]
        settings = connection.settings_dict
        watcher = psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"],
            dbname=database,
            autocommit=True,
        )
        mine = watcher.info.backend_pid

        def backends() -> list[int]:
            rows = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [database, mine],
            ).fetchall()
            return [pid for (pid,) in rows]

        self._sample(backends())
        self.start = dict(self.seen)
        self.process_start = time.process_time()

        def loop():
            while not self.stop.wait(0.2):
                self._sample(backends())
            self._sample(backends())
            watcher.close()

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.process_seconds = time.process_time() - self.process_start
        self.stop.set()
        self.thread.join()

    def seconds(self) -> dict[str, float]:
        totals: dict[str, float] = {"bench process": self.process_seconds}
        for key, ticks in self.seen.items():
            used = (ticks - self.start.get(key, 0)) / self.TICK
            totals[key[0]] = totals.get(key[0], 0.0) + used
        return {group: round(value, 2) for group, value in sorted(totals.items())}


def _measure(args, server: json_server) -> dict:
    from castiel.tenancy.services import tenant_create

    tenant = tenant_create(name="Bench")
    worker = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "qcluster"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    castiel_runs: list[dict] = []
    dlt_runs: list[float] = []
    cpu: dict[str, list[dict]] = {"castiel": [], "dlt": []}
    try:
        _wait_for_workers(args.workers)
        for round_ in range(args.rounds):
            with CpuSampler(worker.pid, server.proc.pid) as sampler:
                castiel_runs.append(_castiel_once(tenant, server.url, args, round_, worker))
            cpu["castiel"].append(sampler.seconds())
            with CpuSampler(worker.pid, server.proc.pid) as sampler:
                dlt_runs.append(_dlt_once(server.url, args, round_))
            cpu["dlt"].append(sampler.seconds())
    finally:
        _stop(worker)

    n, rounds = args.records, args.rounds
    castiel_rate = statistics.median(n / r["seconds"] for r in castiel_runs)
    dlt_rate = statistics.median(n / s for s in dlt_runs)
    castiel_bytes = _castiel_bytes()
    dlt_bytes, dlt_staging_bytes = _dlt_bytes()
    return {
        "value": round(castiel_rate),
        "baseline": round(dlt_rate),
        "unit": "records/s (baseline: dlt rest_api -> postgres, merge on id)",
        "ratio": round(castiel_rate / dlt_rate, 3),
        "records": n,
        "page_size": args.page_size,
        "rounds": rounds,
        "castiel_seconds": [round(r["seconds"], 2) for r in castiel_runs],
        "castiel_worker_seconds": [round(r["worker_seconds"], 2) for r in castiel_runs],
        "dlt_seconds": [round(s, 2) for s in dlt_runs],
        # CPU seconds per process group during each run (the qcluster idles during dlt's).
        "cpu_seconds": cpu,
        "castiel_bytes_per_record": round(castiel_bytes / (n * rounds)),
        "castiel_bytes_by_table": {t: b // rounds for t, b in _sizes(CASTIEL_TABLES).items()},
        "dlt_bytes_per_record": round(dlt_bytes / (n * rounds)),
        "dlt_staging_bytes_per_record": round(dlt_staging_bytes / (n * rounds)),
    }


def _castiel_once(tenant, url: str, args, round_: int, worker) -> dict:
    from integrations.models import Integration
    from syncing.inbound import scheduler
    from syncing.models import Record, SyncRun, SyncTask

    integration = Integration.objects.create(
        tenant=tenant,
        provider="generic_rest",
        name=f"json-server {round_}",
        config={
            "base_url": url,
            "records_path": "data",
            "updated_at_field": "updatedAt",
            "since_param": "updatedAt:gte",
            "pagination": {
                "style": "page",
                "page_param": "_page",
                "size_param": "_per_page",
                "next_page_path": "next",
                "page_size": args.page_size,
            },
        },
    )
    task = SyncTask.objects.create(
        tenant=tenant, integration=integration, entity_type="contacts", mode="incremental"
    )
    started = time.perf_counter()
    scheduler.claim([task.id], trigger=SyncRun.Trigger.MANUAL)
    done = (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED)
    while not SyncRun.objects.filter(task=task, status__in=done).exists():
        if worker.poll() is not None:
            raise RuntimeError("the qcluster exited")
        waited = time.perf_counter() - started
        if waited > 60 and not SyncRun.objects.filter(task=task).exists():
            # The wake-up was taken but no run began: the task failed before its first write
            # (an import error, say), which only the qcluster's own log would show.
            raise RuntimeError("the qcluster did not start the sync run within 60 s")
        if waited > 1800:
            raise RuntimeError("the Castiel run did not finish in 30 minutes")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    run = SyncRun.objects.get(task=task)
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error_code, run.error_summary)
    stored = Record.objects.filter(integration=integration).count()
    assert run.created == args.records == stored, (run.created, stored)
    worker_seconds = (run.finished_at - run.started_at).total_seconds()
    return {"seconds": seconds, "worker_seconds": worker_seconds}


def _dlt_once(url: str, args, round_: int) -> float:
    import dlt
    from django.db import connection
    from dlt.sources.rest_api import rest_api_source

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    settings = connection.settings_dict
    credentials = (
        f"postgresql://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    source = rest_api_source(
        {
            "client": {
                "base_url": url,
                "paginator": {
                    "type": "page_number",
                    "page_param": "_page",
                    "base_page": 1,
                    "total_path": "pages",
                },
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "contacts",
                    "endpoint": {
                        "path": "contacts",
                        "params": {"_per_page": args.page_size},
                        "data_selector": "data",
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"peer_{os.getpid()}_{round_}",
        pipelines_dir=tempfile.mkdtemp(prefix="castiel-peer-dlt-"),
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name=f"{DLT_SCHEMA_PREFIX}_{round_}",
    )
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{DLT_SCHEMA_PREFIX}_{round_}".contacts')  # noqa: S608 - ours
        loaded = cursor.fetchone()[0]
    assert loaded == args.records, loaded
    return seconds


def _sizes(tables) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t, pg_total_relation_size(t::regclass) FROM unnest(%s::text[]) AS t",
            [list(tables)],
        )
        return dict(cursor.fetchall())


def _castiel_bytes() -> int:
    return sum(_sizes(CASTIEL_TABLES).values())


def _dlt_bytes() -> tuple[int, int]:
    """(bytes of dlt's datasets, bytes of their staging datasets)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname LIKE '%%\\_staging', "
            "sum(pg_total_relation_size(format('%%I.%%I', schemaname, tablename)::regclass)) "
            "FROM pg_tables WHERE schemaname LIKE %s GROUP BY 1",
            [f"{DLT_SCHEMA_PREFIX}\\_%"],
        )
        found = {staging: int(size) for staging, size in cursor.fetchall()}
    return found.get(False, 0), found.get(True, 0)
