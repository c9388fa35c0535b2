"""Prometheus metrics of the sync engine (multiprocess-safe counters and histograms).

Records per second is ``rate(castiel_sync_records_total[5m])``; each run's own rate is also
stored on ``SyncRun`` (``records_per_second``) and observed in a histogram.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from castiel.observability.metrics import register_scrape_collector

RECORDS = Counter(
    "castiel_sync_records_total", "Records processed by inbound syncs", ["provider", "outcome"]
)
RUNS = Counter("castiel_sync_runs_total", "Inbound sync runs finished", ["provider", "status"])
RUN_DURATION = Histogram(
    "castiel_sync_run_duration_seconds",
    "Inbound sync run duration",
    ["provider"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
RUN_RATE = Histogram(
    "castiel_sync_run_records_per_second",
    "Records per second of each finished run",
    ["provider"],
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000),
)
PAGE_DURATION = Histogram(
    "castiel_sync_page_seconds", "Time to fetch and commit one page", ["provider", "phase"]
)
RETRIES = Counter("castiel_sync_retries_total", "Retried page fetches", ["provider", "reason"])
TASKS_CLAIMED = Counter("castiel_sync_tasks_claimed_total", "Sync tasks claimed by the scheduler")
LEASES_REAPED = Counter("castiel_sync_leases_reaped_total", "Expired sync task leases returned")


def task_states():
    from django.db.models import Count

    from syncing.models import Conflict, SyncTask

    tasks = GaugeMetricFamily("castiel_sync_tasks", "Sync tasks by status", labels=["status"])
    for row in SyncTask.objects.values("status").annotate(n=Count("id")):
        tasks.add_metric([row["status"]], row["n"])
    yield tasks
    conflicts = GaugeMetricFamily("castiel_sync_open_conflicts", "Conflicts awaiting review")
    conflicts.add_metric([], Conflict.objects.filter(status="open").count())
    yield conflicts


register_scrape_collector("sync_tasks", task_states)
