"""``/healthz``: one JSON object with a result per check, 200 when all pass, else 503.

Each check returns ``(status, detail)`` where status is ``ok``, ``degraded`` (working with
reduced guarantees, e.g. the rate limiter without Redis — still 200) or ``fail`` (503).
Apps add their own checks with ``register_check``.

Anyone may call it (load balancers, orchestrators), so the open answer is the overall status
and each check's name and status only. The details — exception text, hosts, ports, user
names, backend and cluster names — and the latencies are shown with the metrics token
(``Authorization: Bearer <CASTIEL_METRICS_TOKEN>``) or to staff signed in to the admin.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from castiel.observability.logging import get_logger

log = get_logger(__name__)

OK, DEGRADED, FAIL = "ok", "degraded", "fail"
Check = Callable[[], tuple[str, str]]
_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    _checks[name] = check


def check_database() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return OK, connection.vendor


# The cache probe writes a marker at most once per this many seconds (per site): /healthz is
# polled every few seconds by load balancers, and each poll must not be a cache write.
CACHE_PROBE_SECONDS = 60


def check_cache() -> tuple[str, str]:
    key = "castiel:healthz"
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    if cache.get(key) is not None:
        return OK, backend
    cache.set(key, uuid.uuid4().hex, CACHE_PROBE_SECONDS)
    if cache.get(key) is None:
        return FAIL, "cache did not return the value just written"
    return OK, backend


def check_broker() -> tuple[str, str]:
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        return FAIL, "broker did not answer ping"
    return OK, broker.info()


def expected_clusters() -> list[str]:
    alt = settings.Q_CLUSTER.get("ALT_CLUSTERS") or {}
    return sorted(alt) if alt else [settings.Q_CLUSTER["name"]]


def live_and_missing() -> tuple[list[str], list[str]]:
    """(clusters with a fresh heartbeat, expected clusters without one)."""
    from castiel.observability.models import WorkerHeartbeat

    fresh_since = timezone.now() - timedelta(seconds=settings.CASTIEL_HEARTBEAT_STALE_AFTER)
    alive = set(
        WorkerHeartbeat.objects.filter(last_seen__gte=fresh_since).values_list("cluster", flat=True)
    )
    return sorted(alive), [name for name in expected_clusters() if name not in alive]


def check_workers() -> tuple[str, str]:
    alive, missing = live_and_missing()
    if missing:
        return FAIL, "no live worker for cluster(s): " + ", ".join(missing)
    return OK, "live clusters: " + ", ".join(sorted(alive))


register_check("database", check_database)
register_check("cache", check_cache)
register_check("broker", check_broker)
register_check("workers", check_workers)
register_check("schedules", lambda: _schedules_health())


def _schedules_health() -> tuple[str, str]:
    from castiel.schedules import health_check

    return health_check()


def run_checks() -> tuple[bool, dict]:
    results = {}
    healthy = True
    for name, check in _checks.items():
        started = time.perf_counter()
        try:
            status, detail = check()
        except Exception as exc:  # a failing dependency is a result, not a crash
            status, detail = FAIL, f"{exc.__class__.__name__}: {str(exc)[:200]}"
        results[name] = {
            "status": status,
            "detail": detail,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        healthy = healthy and status != FAIL
    return healthy, results


def may_see_details(request) -> bool:
    from castiel.observability.views import has_metrics_token

    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    return has_metrics_token(request)


@never_cache
def healthz(request):
    healthy, results = run_checks()
    if not healthy:
        log.warning("healthz.unhealthy", checks={k: v["status"] for k, v in results.items()})
    if not may_see_details(request):
        results = {name: {"status": result["status"]} for name, result in results.items()}
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": results},
        status=200 if healthy else 503,
    )
