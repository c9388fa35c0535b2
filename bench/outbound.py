"""Outbound push: N local updates through outbox → queue → qcluster workers → limiter → HTTP.

Castiel: N records are updated through the real service (``local_changes.record_update``: the
record and its outbox row in one transaction; timed separately as ``outbox_write_seconds``),
then one dispatch wakes a real ``manage.py qcluster`` (Redis broker, ``--workers`` processes)
and the clock runs until every change is ``succeeded``: claims with leases, batch messages,
re-reading each record, the adapter's PATCH through the outbound client (the real three-level
rate-limit gate with limits set out of reach, SSRF guard, logging, metrics) and the fenced
result + ``mark_pushed`` per change.
Baseline, in the same run: the same N PATCH requests sent straight to the same sink with
``requests``, from as many threads as there are workers and from one thread; the faster of
the two is the baseline.

The sink is a tiny Node HTTP server answering every write with its JSON body (Node keeps up
with both clients, so the client side is what is measured); without Node, a threaded Python
server. PostgreSQL: a scratch database (bench/_syncdb.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench import support
from bench._syncdb import scratch_postgres
from bench.support import REPO

NODE_SINK = r"""
const http = require("http");
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let data = {};
    try { data = JSON.parse(Buffer.concat(chunks).toString() || "{}"); } catch (e) {}
    const out = JSON.stringify({ ...data, id: req.url.split("/").filter(Boolean).pop() });
    res.writeHead(200, { "Content-Type": "application/json",
                         "Content-Length": Buffer.byteLength(out) });
    res.end(out);
  });
});
server.keepAliveTimeout = 120000;
server.listen(0, "127.0.0.1", () => console.log("LISTENING " + server.address().port));
"""


def add_arguments(parser):
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="qcluster worker processes")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )


@contextmanager
def sink():
    """(url, kind) of a fast local HTTP server accepting every write."""
    node = shutil.which("node")
    if node:
        script = Path(tempfile.mkdtemp(prefix="castiel-sink-")) / "sink.js"
        script.write_text(NODE_SINK)
        proc = subprocess.Popen([node, str(script)], stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline().split()[1])
            yield f"http://127.0.0.1:{port}", "node"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def do_PATCH(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = {**json.loads(body or b"{}"), "id": self.path.rstrip("/").split("/")[-1]}
            out = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", "python"
    finally:
        server.shutdown()


def direct(url: str, n: int, threads: int) -> float:
    """Seconds for ``n`` PATCHes straight to the sink from ``threads`` threads."""
    per_thread = [range(i, n, threads) for i in range(threads)]

    def work(indexes):
        session = requests.Session()
        for i in indexes:
            session.patch(f"{url}/contacts/{i}", json={"n": 1}, timeout=10).raise_for_status()

    pool = [threading.Thread(target=work, args=(ids,)) for ids in per_thread]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


def run(args) -> dict:
    env = {
        "REDIS_URL": args.redis_url,
        "CASTIEL_OUTBOUND_BATCH_SIZE": str(args.batch_size),
        "CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES": str(args.workers * 2),
        "Q_WORKERS": str(args.workers),
        "CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS": "1",
    }
    with sink() as (url, kind), scratch_postgres(**env):
        return _measure(args, url, kind)


def _measure(args, url: str, sink_kind: str) -> dict:
    from unittest import mock

    from castiel.tenancy.services import tenant_create
    from integrations.models import Integration
    from ratelimit.models import RateLimitOverride
    from syncing.models import OutboundChange
    from syncing.outbound import dispatch, local_changes
    from syncing.records import outbox

    n = args.updates
    tenant = tenant_create(name="Bench")
    integration = Integration.objects.create(
        tenant=tenant, provider="generic_rest", name="sink", config={"base_url": url}
    )
    # The real limiter gates every PATCH (its Redis round trip is part of the path), with all
    # three levels set out of reach: the defaults (150 updates/min) would measure the limit.
    Level = RateLimitOverride.Level
    for level, operation in (
        (Level.TENANT, ""),
        (Level.INTEGRATION, ""),
        (Level.OPERATION, "update"),
    ):
        RateLimitOverride.objects.create(
            tenant=tenant,
            integration=None if level == Level.TENANT else integration,
            level=level,
            operation=operation,
            limit=10**9,
            window_seconds=60,
        )
    rows = support.synced_contacts(tenant, integration, n)

    # Warm both paths up (connections, imports) outside the clock.
    direct(url, 200, args.workers)
    started = time.perf_counter()
    with mock.patch.object(outbox, "request_dispatch", lambda: None):
        for row in rows:
            local_changes.record_update(
                tenant_id=tenant.id, record_id=row.id, data={"name": f"{row.data['name']}!"}
            )
    write_seconds = time.perf_counter() - started
    assert OutboundChange.objects.filter(status="pending").count() == n

    worker = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "qcluster"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_workers(args.workers)
        # Polled cheaply (an index probe for any open change) so the bench process takes
        # little CPU from the workers on a small machine.
        still_open = OutboundChange.objects.filter(status__in=OutboundChange.OPEN)
        started = time.perf_counter()
        dispatch.dispatch()
        while still_open.exists():
            if worker.poll() is not None:
                raise RuntimeError("the qcluster exited")
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"{still_open.count()} of {n} not pushed after 10 minutes")
            time.sleep(0.1)
        push_seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert not OutboundChange.objects.exclude(status="succeeded").exists()

    threaded = n / direct(url, n, args.workers)
    single = n / direct(url, n, 1)
    # The baseline is the faster of the two (one thread often wins: the GIL), so the ratio
    # is never flattered by a slow baseline.
    rate, baseline = n / push_seconds, max(threaded, single)
    return {
        "value": round(rate),
        "baseline": round(baseline),
        "unit": "pushes/s",
        "ratio": round(rate / baseline, 3),
        "updates": n,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "sink": sink_kind,
        "push_seconds": round(push_seconds, 2),
        "baseline_threads_per_s": round(threaded),
        "baseline_one_thread_per_s": round(single),
        "outbox_write_seconds": round(write_seconds, 2),
        "outbox_writes_per_s": round(n / write_seconds),
    }


def _wait_for_workers(count: int, timeout: float = 60) -> None:
    from castiel.observability.models import WorkerHeartbeat

    deadline = time.monotonic() + timeout
    while WorkerHeartbeat.objects.count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the qcluster workers did not start")
        time.sleep(0.2)
