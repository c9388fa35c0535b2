"""Signed GitHub webhooks received (verified, stored, queued) vs a bare Django view.

gunicorn with the production profile on PostgreSQL + Redis (a database and key prefix of its
own, removed afterwards). This process is the load generator: it signs every delivery with a
unique ``X-GitHub-Delivery`` and sends, first at full speed (bare view and webhooks in
alternating rounds, so other load on the machine weighs on both alike), then at a steady half
of the webhook maximum to read the latency a provider sees under normal load. Accepted means
a 200 ``accepted`` answer, which the receiver gives only after the event's insert committed.
The bare view gets the very same signed POSTs, so only the server side differs. No qcluster
runs: receipt is measured, processing is not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bench import support

SECRET = "bench-signing-secret"  # noqa: S105 - a throwaway bench secret
SETUP = """
from castiel.tenancy import services as tenancy
from webhooks import registrations
tenant = tenancy.tenant_create(name="Bench")
registration = registrations.registration_create(
    tenant=tenant, name="bench", scheme="github", secret=%r, rate_limit_per_minute=10**9
)
from bench.support import subscribe_if_asked
subscribe_if_asked(tenant)
print(registration.pk)
"""
EXAMPLES = Path(support.REPO) / "tests/node/node_modules/@octokit/webhooks-examples"


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=12.0, help="load time per phase")
    parser.add_argument("--rounds", type=int, default=4, help="bare/webhook alternations")
    parser.add_argument(
        "--small-payload",
        action="store_true",
        help="a 100-byte body instead of a real GitHub issues.opened payload (~13 kB)",
    )
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    # 2 x cores + 1, gunicorn's own recommendation; the same server serves the baseline.
    parser.add_argument("--workers", type=int, default=5, help="gunicorn workers")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432"),
        help="PostgreSQL server (a scratch database is created and dropped on it)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )


def issue_payload() -> dict:
    """A real GitHub issues.opened payload (octokit examples) when installed, else a stand-in."""
    index = EXAMPLES / "api.github.com" / "index.json"
    if index.exists():
        for entry in json.loads(index.read_text()):
            if entry["name"] == "issues":
                for example in entry["examples"]:
                    if example.get("action") == "opened":
                        return example
    return {"action": "opened", "issue": {"id": 1, "title": "x" * 200, "body": "y" * 2000}}


def _admin(database_url: str, sql: str, params=None) -> None:
    import psycopg

    with psycopg.connect(database_url + "/postgres", autocommit=True) as conn:
        conn.execute(sql, params)


def _cleanup_redis(redis_url: str, token: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{token}*", count=1000):
        client.delete(key)


def paced_load(call, *, rate: float, threads: int, seconds: float):
    """Send at ``rate`` requests/s in total; returns (achieved rate, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    interval = threads / rate
    start = time.monotonic() + 0.1
    stop = start + seconds

    def worker(offset: float):
        session = requests.Session()
        local = []
        due = start + offset
        while due < stop:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            began = time.perf_counter()
            call(session)
            local.append(time.perf_counter() - began)
            due += interval
        with lock:
            latencies.extend(local)

    pool = [threading.Thread(target=worker, args=(i * interval / threads,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(latencies) / seconds, latencies


def run(args) -> dict:
    token = f"castiel-bench-{secrets.token_hex(4)}"
    database = token.replace("-", "_")
    from cryptography.fernet import Fernet

    env = support.scratch_env(
        CASTIEL_PROFILE="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"{args.database_url}/{database}",
        REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX=token,
        CASTIEL_QUEUE_NAME=token,
        CASTIEL_SECRET_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        CASTIEL_BENCH_VIEWS="1",
        # The limits stay on (their Redis round trip is part of receipt), set out of reach.
        CASTIEL_WEBHOOK_TENANT_RATE_LIMIT_PER_MINUTE=str(10**9),
    )
    _admin(args.database_url, f'CREATE DATABASE "{database}"')
    try:
        support.manage(env, "migrate", "-v0")
        registration = support.manage(env, "shell", "-c", SETUP % SECRET).strip().splitlines()[-1]
        return _measure(args, env, registration)
    finally:
        _cleanup_redis(args.redis_url, token)
        _admin(
            args.database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [database],
        )
        _admin(args.database_url, f'DROP DATABASE IF EXISTS "{database}"')


def _measure(args, env, registration: str) -> dict:
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "gunicorn", "castiel.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
        "--log-level", "warning",
    ]  # fmt: skip
    payload = (
        {"action": "opened", "issue": {"id": 1, "title": "t"}}
        if args.small_payload
        else issue_payload()
    )
    body_template = json.dumps(payload, indent=2)
    counter = iter(range(10**12))
    outcomes: dict[int, int] = {}
    outcome_lock = threading.Lock()

    def signed_post(session, url):
        delivery = f"bench-{next(counter)}"
        # A unique delivery per request: each one is a new event, stored and queued.
        body = body_template.replace('"opened"', f'"opened", "_d": "{delivery}"', 1).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return session.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": f"sha256={signature}",
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": delivery,
            },
            timeout=30,
        )

    def webhook_call(session):
        response = signed_post(session, f"{base}/webhooks/{registration}/")
        with outcome_lock:
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1

    def bare_call(session):
        # The very same signed delivery (same bytes on the wire, same work for this load
        # generator, which shares the machine's cores): only the server side differs.
        response = signed_post(session, f"{base}/bench/bare/")
        assert response.status_code == 200

    with support.process(cmd, env, ready_url=f"{base}/bench/bare/"):
        support.load(bare_call, threads=args.threads, seconds=1)  # warm up
        support.load(webhook_call, threads=args.threads, seconds=1)
        # Interleaved rounds: other load on the machine then weighs on both sides alike.
        bare_n = hook_n = 0
        bare_lat: list[float] = []
        hook_lat: list[float] = []
        outcomes.clear()
        round_seconds = args.seconds / args.rounds
        for _ in range(args.rounds):
            _, lat = support.load(bare_call, threads=args.threads, seconds=round_seconds)
            bare_n, bare_lat = bare_n + len(lat), bare_lat + lat
            _, lat = support.load(webhook_call, threads=args.threads, seconds=round_seconds)
            hook_n, hook_lat = hook_n + len(lat), hook_lat + lat
        bare_rate = bare_n / (round_seconds * args.rounds)
        hook_rate = hook_n / (round_seconds * args.rounds)
        full_outcomes = dict(outcomes)
        outcomes.clear()
        steady_target = hook_rate / 2
        steady_rate, steady_lat = paced_load(
            webhook_call, rate=steady_target, threads=args.threads, seconds=args.seconds
        )
        steady_outcomes = dict(outcomes)
        stored = _count_stored(env)

    accepted_rate = hook_rate * full_outcomes.get(200, 0) / max(1, sum(full_outcomes.values()))
    sent_200 = full_outcomes.get(200, 0) + steady_outcomes.get(200, 0)
    return {
        "value": round(accepted_rate, 1),
        "baseline": round(bare_rate, 1),
        "unit": "requests/s",
        "ratio": round(accepted_rate / bare_rate, 3),
        "p50_ms": round(support.median(hook_lat) * 1000, 2),
        "p99_ms": round(support.percentile(hook_lat, 99) * 1000, 2),
        "baseline_p50_ms": round(support.median(bare_lat) * 1000, 2),
        "baseline_p99_ms": round(support.percentile(bare_lat, 99) * 1000, 2),
        "steady_rate": round(steady_rate, 1),
        "steady_p50_ms": round(support.median(steady_lat) * 1000, 2),
        "steady_p99_ms": round(support.percentile(steady_lat, 99) * 1000, 2),
        "statuses_full_speed": full_outcomes,
        "statuses_steady": steady_outcomes,
        "stored_events": stored,
        "acknowledged_events": sent_200,
        "payload_bytes": len(body_template),
        "workers": args.workers,
        "threads": args.threads,
    }


def _count_stored(env) -> int:
    code = (
        "from webhooks.models import WebhookEvent; "
        "print(WebhookEvent.objects.filter(outcome='accepted').count())"
    )
    out = subprocess.run(
        [sys.executable, str(support.REPO / "manage.py"), "shell", "-c", code],
        cwd=support.REPO, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])
