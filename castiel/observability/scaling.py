"""Scaling signals per work kind, read from the database (the source of truth) at scrape time.

For each work kind (``settings.WORK_KINDS``) ``/metrics`` reports:

* ``castiel_scaling_backlog{kind}`` — work waiting for a worker of that kind: sync tasks the
  scheduler claimed and queued (inbound), outbound changes due or claimed but not yet being
  pushed (outbound), accepted webhook events waiting for their first or next processing
  (webhooks); 0 for maintenance, whose work is only timed;
* ``castiel_scaling_oldest_seconds{kind}`` — how long the oldest of that work has waited;
* ``castiel_scaling_instances{kind}`` — worker instances (hosts) of the kind's cluster whose
  heartbeat is fresh;
* ``castiel_scaling_recommended_instances{kind}`` — the figure a scaler can follow:
  ``ceil(backlog / per_instance)``, raised to one more than the live instances while the
  oldest work is older than ``max_age_seconds``, always within ``[min, max]``
  (``settings.CASTIEL_SCALING``; maintenance is fixed at one, as the scheduler must be).

And, per cluster, ``castiel_workers_alive{cluster}``: live worker processes (0 for a cluster
with none — the "worker kind down" alert).

The waiting work is counted from the apps' tables by name (``apps.get_model``), so the
foundation imports no app; the queries use the tables' "due" indexes. Tenants that are
switched off are left out: their work waits on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from castiel.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Backlog:
    waiting: int
    oldest_seconds: float


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


def _merge(now: datetime, *parts: tuple[int, datetime | None]) -> Backlog:
    waiting = sum(count for count, _ in parts)
    oldest = [since for count, since in parts if count and since]
    return Backlog(waiting, _age(now, min(oldest)) if oldest else 0.0)


def inbound_backlog(now: datetime) -> Backlog:
    from django.apps import apps
    from django.db.models import Count, Min

    SyncTask = apps.get_model("syncing", "SyncTask")
    row = SyncTask.objects.filter(status="queued", tenant__is_active=True).aggregate(
        n=Count("pk"), since=Min("queued_at")
    )
    return _merge(now, (row["n"], row["since"]))


def outbound_backlog(now: datetime) -> Backlog:
    from django.apps import apps
    from django.db.models import Count, Min

    OutboundChange = apps.get_model("syncing", "OutboundChange")
    active = OutboundChange.objects.filter(tenant__is_active=True)
    due = active.filter(status="pending", next_attempt_at__lte=now).aggregate(
        n=Count("pk"), since=Min("next_attempt_at")
    )
    queued = active.filter(status="queued").aggregate(n=Count("pk"), since=Min("next_attempt_at"))
    return _merge(now, (due["n"], due["since"]), (queued["n"], queued["since"]))


def webhooks_backlog(now: datetime) -> Backlog:
    from django.apps import apps
    from django.db.models import Count, Min

    WebhookEvent = apps.get_model("webhooks", "WebhookEvent")
    active = WebhookEvent.objects.filter(tenant__is_active=True)
    new = active.filter(status="received").aggregate(n=Count("pk"), since=Min("received_at"))
    retry = active.filter(status="retrying", next_attempt_at__lte=now).aggregate(
        n=Count("pk"), since=Min("next_attempt_at")
    )
    return _merge(now, (new["n"], new["since"]), (retry["n"], retry["since"]))


BACKLOGS = {
    "inbound": inbound_backlog,
    "outbound": outbound_backlog,
    "webhooks": webhooks_backlog,
}


def recommended(kind: str, backlog: Backlog, alive: int) -> int:
    """The instance count to aim for (see the module docstring)."""
    bounds = settings.CASTIEL_SCALING[kind]
    low, high = bounds["min"], bounds["max"]
    figure = math.ceil(backlog.waiting / max(1, bounds["per_instance"]))
    if (
        bounds["max_age_seconds"]
        and backlog.waiting
        and (backlog.oldest_seconds > bounds["max_age_seconds"])
    ):
        figure = max(figure, alive + 1)
    return max(low, min(high, figure))


def live_workers(now: datetime) -> dict[str, tuple[int, int]]:
    """cluster -> (live processes, live hosts) from fresh heartbeats."""
    from django.db.models import Count

    from castiel.observability.models import WorkerHeartbeat

    fresh = now - timedelta(seconds=settings.CASTIEL_HEARTBEAT_STALE_AFTER)
    rows = (
        WorkerHeartbeat.objects.filter(last_seen__gte=fresh)
        .values("cluster")
        .annotate(processes=Count("pk"), hosts=Count("host", distinct=True))
        .order_by()
    )
    return {row["cluster"]: (row["processes"], row["hosts"]) for row in rows}


def signals(now: datetime | None = None, alive: dict | None = None) -> dict[str, dict]:
    """kind -> {cluster, backlog, oldest_seconds, instances, recommended}."""
    from castiel.queue import cluster_for

    now = now or timezone.now()
    alive = live_workers(now) if alive is None else alive
    result = {}
    for kind in settings.WORK_KINDS:
        read = BACKLOGS.get(kind)
        try:
            backlog = read(now) if read else Backlog(0, 0.0)
        except Exception:  # a scrape must not fail because one table is busy or missing
            log.warning("scaling.backlog_unavailable", kind=kind, exc_info=True)
            continue
        cluster = cluster_for(kind)
        instances = alive.get(cluster, (0, 0))[1]
        result[kind] = {
            "cluster": cluster,
            "backlog": backlog.waiting,
            "oldest_seconds": round(backlog.oldest_seconds, 3),
            "instances": instances,
            "recommended": recommended(kind, backlog, instances),
        }
    return result


def collect():
    """Scrape-time metric families (registered by :func:`register`)."""
    from prometheus_client.core import GaugeMetricFamily

    from castiel.observability.health import expected_clusters

    now = timezone.now()
    processes = live_workers(now)
    by_kind = signals(now, processes)
    families = {
        "backlog": GaugeMetricFamily(
            "castiel_scaling_backlog", "Work waiting for a worker, per kind", labels=["kind"]
        ),
        "oldest_seconds": GaugeMetricFamily(
            "castiel_scaling_oldest_seconds",
            "Age of the oldest work waiting for a worker, per kind",
            labels=["kind"],
        ),
        "instances": GaugeMetricFamily(
            "castiel_scaling_instances",
            "Worker instances (hosts) with a fresh heartbeat, per kind",
            labels=["kind"],
        ),
        "recommended": GaugeMetricFamily(
            "castiel_scaling_recommended_instances",
            "Recommended worker instances per kind (settings.CASTIEL_SCALING)",
            labels=["kind"],
        ),
    }
    for kind, figures in by_kind.items():
        for key, family in families.items():
            family.add_metric([kind], figures[key])
    yield from families.values()
    alive = GaugeMetricFamily(
        "castiel_workers_alive",
        "Worker processes with a fresh heartbeat, per cluster",
        labels=["cluster"],
    )
    for cluster in sorted(set(expected_clusters()) | set(processes)):
        alive.add_metric([cluster], processes.get(cluster, (0, 0))[0])
    yield alive


def register() -> None:
    from castiel.observability.metrics import register_scrape_collector

    register_scrape_collector("scaling", collect)
