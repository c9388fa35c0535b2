"""Authenticated tenant API call vs a bare Django view, on the same gunicorn server.

Castiel: ``GET /api/v1/tenant/`` (API-key auth, tenant lookup, DRF, JSON errors machinery,
correlation-id middleware). Baseline: a plain Django view returning a small JSON body through
the same middleware stack and server. The ratio is Castiel's rate over the bare rate.
"""

from __future__ import annotations

import sys

from bench import support


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per endpoint")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")


def run(args) -> dict:
    env = support.scratch_env(CASTIEL_BENCH_VIEWS="1")
    support.manage(env, "migrate", "-v0")
    support.manage(env, "createcachetable")
    key = support.manage(env, "create_tenant", "Bench").strip().splitlines()[-1]
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "castiel.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
    ]
    headers = {"Authorization": f"Bearer {key}"}

    def api_call(session):
        response = session.get(f"{base}/api/v1/tenant/", headers=headers, timeout=10)
        assert response.status_code == 200, response.text

    def bare_call(session):
        response = session.get(f"{base}/bench/bare/", timeout=10)
        assert response.status_code == 200

    with support.process(cmd, env, ready_url=f"{base}/bench/bare/"):
        support.load(bare_call, threads=args.threads, seconds=1)  # warm up
        support.load(api_call, threads=args.threads, seconds=1)
        bare_rate, bare_lat = support.load(bare_call, threads=args.threads, seconds=args.seconds)
        api_rate, api_lat = support.load(api_call, threads=args.threads, seconds=args.seconds)
    return {
        "value": round(api_rate, 1),
        "baseline": round(bare_rate, 1),
        "unit": "requests/s",
        "ratio": round(api_rate / bare_rate, 3),
        "p50_ms": round(support.median(api_lat) * 1000, 2),
        "p99_ms": round(support.percentile(api_lat, 99) * 1000, 2),
        "baseline_p50_ms": round(support.median(bare_lat) * 1000, 2),
        "baseline_p99_ms": round(support.percentile(bare_lat, 99) * 1000, 2),
    }
