"""Batch push under a provider request budget: N creates to the sandbox's batch endpoint.

N local creates (``local_changes.record_create``, not timed) are pushed by a real
``manage.py qcluster`` (Redis broker) to the sandbox served by gunicorn on the same scratch
PostgreSQL (bench/_syncdb.py). The sandbox allows ``--budget`` requests per second (its own
fixed window of ``--window`` seconds, with rate-limit headers that Castiel's adaptive limiter
reads; the batch endpoint counts one request however many items it carries) and fails
``--item-error-rate`` of the items inside batches (422, seeded by each item's key); Castiel's
limiter is set to the same budget. Reported: records per provider request, records/s against
the ceiling ``budget x batch size`` (the ratio), and whether every change's result is exactly
right — each item the sandbox failed is that change's dead letter, every other change
succeeded with the object the sandbox created for it, and no object was created twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from bench import support
from bench._syncdb import scratch_postgres
from bench.support import REPO


def add_arguments(parser):
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--budget", type=int, default=10, help="provider requests per second")
    parser.add_argument(
        "--window",
        type=int,
        default=1,
        help="the provider's rate window in seconds (budget x window requests per window; "
        "HubSpot's is 10)",
    )
    parser.add_argument("--batch-size", type=int, default=100, help="items per provider request")
    parser.add_argument("--item-error-rate", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    parser.add_argument(
        "--one-by-one", action="store_true", help="no batch endpoint (one request per record)"
    )
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print each provider request's start, answer (s from the first) and status",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def run(args) -> dict:
    env = {
        "REDIS_URL": args.redis_url,
        # One push message holds one provider batch.
        "CASTIEL_OUTBOUND_BATCH_SIZE": str(args.batch_size),
        "CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES": str(args.workers * 2),
        "Q_WORKERS": str(args.workers),
        "CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS": "1",
        "CASTIEL_SANDBOX": "1",
    }
    with scratch_postgres(**env):
        port = support.free_port()
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "castiel.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            support.wait_http(f"http://127.0.0.1:{port}/healthz")
            return _measure(args, f"http://127.0.0.1:{port}")
        finally:
            _stop(web)


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _measure(args, base: str) -> dict:
    from unittest import mock

    from castiel.tenancy.services import tenant_create
    from integrations.models import Integration
    from ratelimit.models import RateLimitOverride
    from sandbox import services as sandbox_services
    from sandbox.batch import _item_fault
    from sandbox.models import SandboxIdempotencyKey, SandboxObject, SandboxRequest
    from syncing.models import DeadLetter, OutboundChange, SyncTask
    from syncing.outbound import dispatch, local_changes
    from syncing.records import outbox

    n = args.changes
    faults = {"item_error_rate": args.item_error_rate, "seed": 20}
    account = sandbox_services.account_create(
        slug="bench",
        rate_limit=args.budget * args.window,
        rate_window_seconds=args.window,
        faults=faults,
    )
    tenant = tenant_create(name="Bench")
    integration = Integration.objects.create(
        tenant=tenant,
        provider="generic_rest",
        name="sandbox",
        config={
            "base_url": f"{base}/sandbox/bench/",
            "list_path": "/contacts/",
            "item_path": "/contacts/{id}/",
            "idempotency_header": "Idempotency-Key",
            "read_only_fields": ["created_at", "deleted_at"],
            "batch_path": "" if args.one_by_one else "/contacts/batch/{operation}/",
            "batch_max_size": args.batch_size,
        },
    )
    SyncTask.objects.create(tenant=tenant, integration=integration, entity_type="contacts")
    # Castiel paces itself to the provider's budget (integration level); the other levels
    # out of reach.
    Level = RateLimitOverride.Level
    for level, operation, limit in (
        (Level.TENANT, "", 10**9),
        (Level.INTEGRATION, "", args.budget * args.window),
        (Level.OPERATION, "create", 10**9),
    ):
        RateLimitOverride.objects.create(
            tenant=tenant,
            integration=None if level == Level.TENANT else integration,
            level=level,
            operation=operation,
            limit=limit,
            window_seconds=args.window,
        )
    requests.get(f"{base}/sandbox/bench/_control/", timeout=10).raise_for_status()

    started = time.perf_counter()
    changes = []
    with mock.patch.object(outbox, "request_dispatch", lambda: None):
        for i in range(n):
            changes.append(
                local_changes.record_create(
                    integration=integration,
                    entity_type="contacts",
                    data={"first_name": f"C{i}", "email": f"c{i}@example.com"},
                ).change
            )
    write_seconds = time.perf_counter() - started
    SandboxRequest.objects.all().delete()

    worker = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "qcluster"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    busy = ("pending", "queued", "running")
    try:
        _wait_for_workers(args.workers)
        open_ = OutboundChange.objects.filter(status__in=busy)
        started = time.perf_counter()
        dispatch.dispatch()
        while open_.exists():
            if worker.poll() is not None:
                raise RuntimeError("the qcluster exited")
            if time.perf_counter() - started > 1200:
                raise RuntimeError(f"{open_.count()} of {n} not pushed after 20 minutes")
            time.sleep(0.1)
        push_seconds = time.perf_counter() - started
    finally:
        _stop(worker)

    # Exactness: the sandbox's item fault is seeded by the key, so the failed set is known.
    expected_dead = (
        set()  # item faults happen inside batches only
        if args.one_by_one
        else {str(c.pk) for c in changes if _item_fault(faults, c.idempotency_key, 0) == "422"}
    )
    by_status: dict[str, set] = {}
    for pk, status in OutboundChange.objects.values_list("pk", "status"):
        by_status.setdefault(status, set()).add(str(pk))
    dead = by_status.get("dead", set())
    succeeded = by_status.get("succeeded", set())
    letters = {str(pk) for pk in DeadLetter.objects.values_list("change_id", flat=True)}
    keys = dict(SandboxIdempotencyKey.objects.filter(account=account).values_list("key", "status"))
    remote = dict(OutboundChange.objects.filter(status="succeeded").values_list("pk", "remote_id"))
    objects = SandboxObject.objects.filter(account=account)
    exact = (
        dead == expected_dead
        and letters == dead
        and len(succeeded) == n - len(dead)
        and objects.count() == len(succeeded)
        and len(set(remote.values())) == len(succeeded)
        and all(keys.get(pk) == 201 for pk in succeeded)
        and all(keys.get(pk) == 422 for pk in dead)
    )
    batch_requests = SandboxRequest.objects.filter(path__contains="/batch/")
    if args.one_by_one:
        batch_requests = SandboxRequest.objects.all()
    requests_made = batch_requests.count()
    single_requests = (
        0 if args.one_by_one else (SandboxRequest.objects.exclude(path__contains="/batch/").count())
    )
    rejected = SandboxRequest.objects.filter(status=429).count()
    answered = [
        (done - at).total_seconds()
        for at, done in batch_requests.values_list("at", "answered_at")
        if done is not None
    ]
    sandbox_seconds = sum(answered) / max(1, len(answered))
    if args.timeline:
        _print_timeline(batch_requests)
    rate = n / push_seconds
    ceiling = args.budget * args.batch_size
    return {
        "value": round(rate),
        "baseline": ceiling,
        "unit": "records/s (baseline: budget x batch size)",
        "ratio": round(rate / ceiling, 3),
        "changes": n,
        "budget_requests_per_s": args.budget,
        "window_seconds": args.window,
        "batch_size": args.batch_size,
        "push_seconds": round(push_seconds, 2),
        "provider_requests": requests_made + single_requests,
        "batch_requests": requests_made,
        "single_requests": single_requests,
        "rejected_429": rejected,
        "records_per_request": round(n / max(1, requests_made + single_requests), 1),
        "requests_per_s": round((requests_made + single_requests) / push_seconds, 2),
        "succeeded": len(succeeded),
        "dead_letters": len(dead),
        "expected_dead": len(expected_dead),
        "every_result_exact": exact,
        # Where the time goes: the sandbox's answer to one batch request, and a worker's
        # whole turn per provider batch (claim, read, request, results).
        "sandbox_seconds_per_batch": round(sandbox_seconds, 3),
        "worker_seconds_per_batch": round(
            push_seconds * args.workers / max(1, requests_made + single_requests), 3
        ),
        "outbox_write_seconds": round(write_seconds, 2),
        "workers": args.workers,
    }


def _wait_for_workers(count: int, timeout: float = 60) -> None:
    from castiel.observability.models import WorkerHeartbeat

    deadline = time.monotonic() + timeout
    while WorkerHeartbeat.objects.count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the qcluster workers did not start")
        time.sleep(0.2)


def _print_timeline(provider_requests) -> None:
    """Where a window's requests went and where it idled (stderr, one request per line)."""
    rows = sorted(provider_requests.values_list("at", "answered_at", "status"))
    if not rows:
        return
    first = rows[0][0]
    for at, answered, status in rows:
        done = f"{(answered - first).total_seconds():8.3f}" if answered else "       -"
        print(f"{(at - first).total_seconds():8.3f} {done} {status}", file=sys.stderr)
