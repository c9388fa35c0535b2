"""Maintenance-job token refresh vs the OAuth server's own token-endpoint rate.

A real django-oauth-toolkit server (tests/credentials/oauth_server, gunicorn, rotating
refresh tokens with reuse protection) gets 2xN seeded token pairs. Baseline: N refresh
grants posted straight to its token endpoint from ``--concurrency`` threads (requests, no
bookkeeping). Castiel: N credentials due for refresh in a scratch embedded site (SQLite,
encrypted DB secret store), refreshed by the maintenance job with the same concurrency —
each refresh takes the lock, re-reads, calls the endpoint through the guarded session,
stores a new encrypted secret version, updates the row and writes an audit.

Every refresh adds rows to the server's database and it slows down as they grow, so the two
sides alternate in ``--rounds`` rounds (baseline chunk, then a maintenance run over the
same number of due credentials) and both see the same server. Value and baseline are
refreshes per second over all rounds; ratio = Castiel / baseline.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench import support


def add_arguments(parser):
    parser.add_argument("--credentials", type=int, default=1000, help="credentials to refresh")
    parser.add_argument("--concurrency", type=int, default=8, help="refresh threads")
    parser.add_argument("--workers", type=int, default=3, help="OAuth server gunicorn workers")
    parser.add_argument("--rounds", type=int, default=10, help="alternating measurement rounds")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="run Castiel on PostgreSQL: server URL (e.g. postgres://postgres@127.0.0.1:5432); "
        "a scratch database is created there and dropped afterwards (default: embedded SQLite)",
    )


def run(args) -> dict:
    n = args.credentials
    scratch = Path(tempfile.mkdtemp(prefix="castiel-bench-refresh-"))
    database = _scratch_postgres(args.postgres) if args.postgres else None
    _configure_django(scratch, database_url=database.url if database else "")
    from tests.credentials.oauthserver import start_oauth_server

    server = start_oauth_server(scratch / "oauth", gunicorn_workers=args.workers)
    try:
        tokens = _seed(server, 2 * n)
        baseline_tokens, castiel_tokens = tokens[:n], tokens[n:]
        ids = _castiel_credentials(server, castiel_tokens)
        _warm_up(server)
        baseline_seconds = castiel_seconds = 0.0
        refreshed = 0
        size = -(-n // args.rounds)
        for start in range(0, n, size):
            baseline_seconds += _baseline(
                server, baseline_tokens[start : start + size], args.concurrency
            )
            seconds, summary = _castiel(ids[start : start + size], args.concurrency)
            castiel_seconds += seconds
            refreshed += summary.get("refreshed", 0)
    finally:
        server.stop()
        if database is not None:
            database.drop()
    castiel_rate, baseline_rate = n / castiel_seconds, n / baseline_seconds
    return {
        "value": round(castiel_rate, 1),
        "baseline": round(baseline_rate, 1),
        "unit": "refreshes/s",
        "ratio": round(castiel_rate / baseline_rate, 3),
        "credentials": n,
        "refreshed": refreshed,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "oauth_server_workers": args.workers,
        "database": "postgresql" if database else "sqlite",
    }


class _ScratchPostgres:
    def __init__(self, server_url: str):
        import psycopg

        self.server_url = server_url.rstrip("/")
        self.name = f"castiel_bench_{os.getpid()}_{int(time.time())}"
        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"{self.server_url}/{self.name}"

    def drop(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _scratch_postgres(server_url: str) -> _ScratchPostgres:
    return _ScratchPostgres(server_url)


def _configure_django(scratch: Path, *, database_url: str = "") -> None:
    env = support.scratch_env(CASTIEL_DATA_DIR=str(scratch / "castiel"))
    for key in ("DATABASE_URL", "REDIS_URL"):  # a scratch site, nothing shared
        env.pop(key, None)
        os.environ.pop(key, None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(
        {k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "CASTIEL_DATA_DIR", "LOG_LEVEL")}
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "castiel" / "metrics")
    os.environ["CASTIEL_TOKEN_REFRESH_BATCH"] = "100000"  # noqa: S105 - a count
    # As in every other bench: DEBUG (on by default in the embedded profile) wraps every
    # query in the debug cursor and keeps its SQL in memory, which production never does.
    os.environ["DEBUG"] = "0"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _seed(server, count: int) -> list[dict]:
    tokens: list[dict] = []
    while len(tokens) < count:
        tokens += server.seed(min(250, count - len(tokens)))
    return tokens


def _warm_up(server) -> None:
    for token in server.seed(20):
        requests.post(
            server.token_url,
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(server.client_id, server.client_secret),
            timeout=30,
        ).raise_for_status()


def _baseline(server, tokens: list[dict], concurrency: int) -> float:
    """Seconds to refresh ``tokens`` straight at the token endpoint."""
    queue = list(tokens)
    lock = threading.Lock()
    failures: list[int] = []

    def worker():
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                token = queue.pop()
            response = session.post(
                server.token_url,
                data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                auth=(server.client_id, server.client_secret),
                timeout=60,
            )
            if response.status_code != 200:
                failures.append(response.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"baseline refreshes failed: {failures[:5]}")
    return elapsed


def _castiel_credentials(server, tokens: list[dict]) -> list:
    from datetime import timedelta

    from django.utils import timezone

    from castiel.tenancy.services import tenant_create
    from credentials.oauth import TokenResult
    from credentials.services import credential_store_oauth_tokens, oauth_client_secret_set
    from integrations.models import Integration

    tenant = tenant_create(name="Bench")
    config = {"base_url": server.url, "oauth": server.oauth_config()}
    integrations = Integration.objects.bulk_create(
        Integration(tenant=tenant, provider="generic_rest", name=f"bench-{i}", config=config)
        for i in range(len(tokens))
    )
    later = timezone.now() + timedelta(days=1)  # not due until its round
    ids = []
    for integration, token in zip(integrations, tokens, strict=True):
        oauth_client_secret_set(integration=integration, client_secret=server.client_secret)
        credential = credential_store_oauth_tokens(
            integration=integration,
            result=TokenResult(
                secret={**token, "token_type": "Bearer"},
                expires_at=later,
                refresh_expires_at=None,
                scopes=["read"],
                refresh_token_rotated=False,
            ),
            requested_scopes=["read"],
        )
        ids.append(credential.pk)
    return ids


def _since(perf_started: float):
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(seconds=time.perf_counter() - perf_started)


def _castiel(ids: list, concurrency: int) -> tuple[float, dict]:
    """Seconds for one maintenance run over ``ids`` (made due first), and its summary."""
    from datetime import timedelta

    from django.utils import timezone

    from credentials.maintenance import refresh_due
    from credentials.models import Credential

    Credential.objects.filter(pk__in=ids).update(
        expires_at=timezone.now() + timedelta(minutes=5), renew_after=None
    )
    started = time.perf_counter()
    summary = refresh_due(concurrency=concurrency)
    elapsed = time.perf_counter() - started
    refreshed = Credential.objects.filter(
        pk__in=ids, status="active", last_refreshed_at__gte=_since(started)
    ).count()
    if summary.get("refreshed") != len(ids) or refreshed != len(ids):
        raise RuntimeError(f"not every credential was refreshed: {summary}, {refreshed} rows")
    return elapsed, summary
