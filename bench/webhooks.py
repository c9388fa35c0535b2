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

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bench import cpu, support, wrk

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
from django.db import connection
from castiel.bench_views import CREATE_INSERT_TABLE, LZ4_IF_AVAILABLE
with connection.cursor() as cursor:
    cursor.execute(CREATE_INSERT_TABLE)
    cursor.execute(LZ4_IF_AVAILABLE)
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
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if wrk.available() else "python",
        help="load generator: wrk (native; the default when installed) or Python threads",
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--steady-rate", type=float, default=1000.0, help="wrk: deliveries/s of the steady phase"
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=30.0,
        help="wrk: length of the steady phase, 0 for none (each second needs rate x ~13.5 kB "
        "of pre-signed deliveries on disk)",
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
    parser.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="wrk: a second server, the same but for these variables (repeatable), serves the "
        "receiver in every round too, in ABBA order with the first: an on/off comparison "
        "under the same machine conditions (reported as compare_*)",
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
        if args.client == "wrk":
            return _measure_wrk(args, env, registration, _compare_env(args, env))
        if args.compare_env:
            raise SystemExit("bench webhooks: --compare-env needs wrk")
        return _measure(args, env, registration)
    finally:
        _cleanup_redis(args.redis_url, token)
        _admin(
            args.database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [database],
        )
        _admin(args.database_url, f'DROP DATABASE IF EXISTS "{database}"')


def _compare_env(args, env: dict[str, str]) -> dict[str, str] | None:
    if not args.compare_env:
        return None
    changes = dict(item.split("=", 1) for item in args.compare_env)
    return {**env, **changes}


def _gunicorn(args) -> tuple[str, list[str]]:
    port = support.free_port()
    return f"http://127.0.0.1:{port}", [
        sys.executable, "-m", "gunicorn", "castiel.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
        "--log-level", "warning",
    ]  # fmt: skip


def _server_and_body(args) -> tuple[str, list[str], str]:
    """The server's address and gunicorn command, and the delivery body every request varies."""
    base, cmd = _gunicorn(args)
    payload = (
        {"action": "opened", "issue": {"id": 1, "title": "t"}}
        if args.small_payload
        else issue_payload()
    )
    return base, cmd, json.dumps(payload, indent=2)


def _measure(args, env, registration: str) -> dict:
    base, cmd, body_template = _server_and_body(args)
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


def _measure_wrk(args, env, registration: str, compare_env: dict | None = None) -> dict:
    """Full speed: bare view, bare view + INSERT and the receiver in interleaved rounds (each
    round with deliveries never sent before); then a steady rate, paced per connection.

    With ``compare_env`` a second server (``webhook_b``) serves the receiver in every round
    too, the two in ABBA order, and pauses :data:`COMPARE_SETTLE_S` after each of its phases:
    work it defers (a batch span exporter's last batch) is done before another phase starts,
    and is counted to it — its web CPU is read over the whole run, not only its phases."""
    import tempfile

    base, cmd, body_template = _server_and_body(args)
    threads = 2
    round_seconds = max(1.0, args.seconds / args.rounds)
    # Enough distinct deliveries for a round at up to 4,000/s.
    per_round = int(4000 * round_seconds) + 1000
    scratch = Path(tempfile.mkdtemp(prefix="castiel-wrk-"))
    kinds = ["bare", "insert", "webhook"]
    paths = {
        "bare": "/bench/bare/",
        "insert": "/bench/bare-insert/",
        "webhook": f"/webhooks/{registration}/",
    }
    bases = dict.fromkeys(kinds, base)
    servers: dict[bytes, str] = {}
    others = contextlib.ExitStack()
    if compare_env is not None:
        # The compared receivers serve nothing else: a server that also served the baselines'
        # phases answered the receiver 5-8 % slower than an identical one that did not.
        base_b, cmd_b = _gunicorn(args)
        base_c, cmd_c = _gunicorn(args)
        kinds.append("webhook_b")
        paths["webhook_b"] = paths["webhook"]
        bases.update(webhook_b=base_b, bare=base_c, insert=base_c)
        servers = {
            base_b.removeprefix("http://").encode(): "web_b",
            base_c.removeprefix("http://").encode(): "web_baselines",
        }
        others.enter_context(support.process(cmd_b, compare_env, f"{base_b}/bench/bare/"))
        others.enter_context(support.process(cmd_c, env, f"{base_c}/bench/bare/"))
    rounds: dict[str, list[dict]] = {kind: [] for kind in kinds}

    def load(kind: str, folder: Path, seconds: float, pause_ms: float = 0) -> dict:
        before = cpu.snapshot(servers)
        result = wrk.run(
            bases[kind],
            paths[kind],
            folder,
            threads=threads,
            connections=args.connections,
            seconds=seconds,
            pause_ms=pause_ms,
        )
        if kind == "webhook_b":
            time.sleep(COMPARE_SETTLE_S)
        result["cpu"] = cpu.snapshot(servers)
        result["cpu_before"] = before
        return result

    def cpu_ms(kind: str) -> dict:
        """CPU-ms per answered request, per process group, over the kind's rounds."""
        done = rounds[kind]
        totals: dict[str, float] = {}
        for r in done:
            for group, value in cpu.per_request(r["cpu_before"], r["cpu"], 1).items():
                totals[group] = totals.get(group, 0.0) + value
        answered = sum(r["status_2xx"] for r in done)
        return {group: round(value / max(1, answered), 3) for group, value in totals.items()}

    window: list[dict] = []
    try:
        with support.process(cmd, env, ready_url=f"{base}/bench/bare/"), others:
            warm = scratch / "warm"
            wrk.write_deliveries(
                warm, count=4000, threads=threads, body_template=body_template,
                secret=SECRET, prefix="warm",
            )  # fmt: skip
            if compare_env is not None:  # the two receivers never see each other's deliveries
                wrk.write_deliveries(
                    scratch / "warm-b", count=4000, threads=threads,
                    body_template=body_template, secret=SECRET, prefix="warm-b",
                )  # fmt: skip
            warmed = {kind: load(kind, scratch / _folder(kind, "warm"), 1) for kind in kinds}
            window.append(cpu.snapshot(servers))
            for n in range(args.rounds):
                for name in {_folder(kind, f"round-{n}") for kind in kinds}:
                    wrk.write_deliveries(
                        scratch / name, count=per_round, threads=threads,
                        body_template=body_template, secret=SECRET, prefix=name,
                    )  # fmt: skip
                # ABBA order after the bare view: odd rounds reverse the rest, so neither the
                # receiver nor the INSERT baseline always runs right after the other's writes
                # (or the compared receivers after each other).
                order = kinds if n % 2 == 0 else [kinds[0], *reversed(kinds[1:])]
                for kind in order:
                    folder = scratch / _folder(kind, f"round-{n}")
                    rounds[kind].append(load(kind, folder, round_seconds))
                for name in {_folder(kind, f"round-{n}") for kind in kinds}:
                    shutil.rmtree(scratch / name)
            window.append(cpu.snapshot(servers))
            steady = trial = None
            if args.steady_seconds > 0:
                # wrk paces by a pause before each request, on top of the answer's latency: a
                # short calibration run measures what a pause gives, and the steady phase
                # corrects it once (stated: the rate reached is reported next to the target).
                interval = args.connections * 1000.0 / args.steady_rate  # ms per connection
                calibration = scratch / "calibration"
                wrk.write_deliveries(
                    calibration, count=int(args.steady_rate * 5 * 1.2) + 100, threads=threads,
                    body_template=body_template, secret=SECRET, prefix="calibration",
                )  # fmt: skip
                trial = load("webhook", calibration, 5, pause_ms=interval)
                reached = args.connections * 1000.0 / max(trial["rate"], 1e-6)
                pause = max(0.0, interval - (reached - interval))
                steady_folder = scratch / "steady"
                wrk.write_deliveries(
                    steady_folder, count=int(args.steady_rate * args.steady_seconds * 1.2) + 100,
                    threads=threads, body_template=body_template, secret=SECRET, prefix="steady",
                )  # fmt: skip
                steady = load("webhook", steady_folder, args.steady_seconds, pause_ms=pause)
            stored = _count_stored(env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def rate(kind: str) -> float:
        done = rounds[kind]
        return sum(r["status_2xx"] for r in done) / sum(r["duration_us"] / 1e6 for r in done)

    bare, insert, hook = rate("bare"), rate("insert"), rate("webhook")
    compared = _compared(rounds, window, hook, cpu_ms) if compare_env is not None else {}
    # Every 2xx the receiver gave must be a stored event. wrk stops each run with requests in
    # flight: those are stored without their answer being counted, at most one per
    # connection and run.
    webhook_runs = [
        r
        for r in (
            *rounds["webhook"],
            *rounds.get("webhook_b", ()),
            steady,
            trial,
            warmed["webhook"],
            warmed.get("webhook_b"),
        )
        if r
    ]
    acknowledged = sum(r["status_2xx"] for r in webhook_runs)
    return {
        "value": round(hook, 1),
        "baseline": round(bare, 1),
        "unit": "accepted deliveries/s (wrk)",
        "ratio": round(hook / bare, 3),
        "insert_baseline": round(insert, 1),
        "cpu_ms_per_request": {kind: cpu_ms(kind) for kind in ("bare", "insert", "webhook")},
        "ratio_to_insert": round(hook / insert, 3),
        "ratio_to_insert_rounds": [
            round(w["status_2xx"] * i["duration_us"] / (w["duration_us"] * i["status_2xx"]), 3)
            for w, i in zip(rounds["webhook"], rounds["insert"], strict=True)
        ],
        "p50_ms": round(support.median([r["p50_us"] for r in rounds["webhook"]]) / 1000, 2),
        "p99_ms": round(max(r["p99_us"] for r in rounds["webhook"]) / 1000, 2),
        "baseline_p99_ms": round(max(r["p99_us"] for r in rounds["bare"]) / 1000, 2),
        "insert_p99_ms": round(max(r["p99_us"] for r in rounds["insert"]) / 1000, 2),
        **(
            {
                "steady_target": args.steady_rate,
                "steady_rate": round(steady["rate"], 1),
                "steady_seconds": args.steady_seconds,
                "steady_p50_ms": round(steady["p50_us"] / 1000, 2),
                "steady_p99_ms": round(steady["p99_us"] / 1000, 2),
                "steady_5xx": steady["status_5xx"],
            }
            if steady
            else {}
        ),
        "non_2xx_full_speed": sum(r["status_4xx"] + r["status_5xx"] for r in rounds["webhook"]),
        "socket_errors": sum(
            r["connect"] + r["read"] + r["write"] + r["timeout"] for r in webhook_runs
        ),
        "wrapped": sum(r["wrapped"] for r in webhook_runs),
        "stored_events": stored,
        "unanswered_at_most": args.connections * len(webhook_runs),
        "every_2xx_stored": stored >= acknowledged,
        "acknowledged_events": acknowledged,
        "payload_bytes": len(body_template),
        "workers": args.workers,
        "connections": args.connections,
        "client": "wrk",
        **compared,
    }


def _folder(kind: str, name: str) -> str:
    """The deliveries of a phase: the compared receiver's are its own, never sent to the other."""
    return f"{name}-b" if kind == "webhook_b" else name


# Seconds the second server of a comparison is left alone after each of its phases.
COMPARE_SETTLE_S = 1.0


def _compared(rounds: dict, window: list[dict], hook: float, cpu_ms) -> dict:
    """The second server's receiver against the first's, from the same rounds: throughput
    ratio (b/a) and server CPU per delivery (PostgreSQL and Redis in its own phases, its web
    workers over the whole run)."""
    done = rounds["webhook_b"]
    answered = sum(r["status_2xx"] for r in done)
    rate_b = answered / sum(r["duration_us"] / 1e6 for r in done)
    web_b = (window[1].get("web_b", 0.0) - window[0].get("web_b", 0.0)) * 1000 / max(1, answered)
    shared = cpu_ms("webhook_b")
    a = cpu_ms("webhook")
    cpu_a = sum(v for g, v in a.items() if g in ("web", "postgres", "redis"))
    cpu_b = web_b + sum(v for g, v in shared.items() if g in ("postgres", "redis"))
    return {
        "compare_value": round(rate_b, 1),
        "compare_ratio": round(rate_b / hook, 3),
        "compare_rates": [round(r["status_2xx"] / (r["duration_us"] / 1e6), 1) for r in done],
        "rates": [round(r["status_2xx"] / (r["duration_us"] / 1e6), 1) for r in rounds["webhook"]],
        "compare_cpu_ms": round(cpu_b, 3),
        "compare_cpu_ms_per_group": {**shared, "web_b_whole_run": round(web_b, 3)},
        "cpu_ms": round(cpu_a, 3),
        "compare_cpu_ratio": round(cpu_a / cpu_b, 3),
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
