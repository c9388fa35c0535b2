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
# The worker's own time per phase: with the next page requested during the commit
# (syncing/inbound/read_ahead.py), "fetch" is what the worker still waited for the page.
PAGE_DURATION = Histogram(
    "castiel_sync_page_seconds",
    "Time the worker spent fetching (waiting for) and committing one page",
    ["provider", "phase"],
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


# -- outbound push (syncing/outbound/) --------------------------------------------------------

PUSHES = Counter(
    "castiel_outbound_pushes_total",
    "Outbound changes finished, by outcome (succeeded, skipped, conflict, dead)",
    ["provider", "operation", "outcome"],
)
PUSH_DURATION = Histogram(
    "castiel_outbound_push_seconds",
    "Duration of one push attempt (provider requests included)",
    ["provider", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PUSH_RETRIES = Counter(
    "castiel_outbound_retries_total",
    "Push attempts retried, deferred by the rate limiter or refused while throttled",
    ["provider", "reason"],
)
DEAD_LETTERS = Counter(
    "castiel_outbound_dead_letters_total", "Changes sent to the dead-letter list", ["provider"]
)
CHANGES_CLAIMED = Counter("castiel_outbound_changes_claimed_total", "Outbound changes claimed")
CHANGES_REAPED = Counter(
    "castiel_outbound_leases_reaped_total", "Expired outbound leases returned to pending"
)
LOST_ATTEMPTS = Counter(
    "castiel_outbound_lost_attempts_total",
    "Push attempts whose worker stopped (crashed, killed, lease overrun) before recording a "
    "result; such changes are then pushed alone",
    ["provider"],
)


def outbound_states():
    from django.db.models import Count

    from syncing.models import DeadLetter, OutboundChange

    changes = GaugeMetricFamily(
        "castiel_outbound_changes", "Open outbound changes by status", labels=["status"]
    )
    counts = dict(
        OutboundChange.objects.filter(status__in=OutboundChange.OPEN)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    for status in OutboundChange.OPEN:
        changes.add_metric([status], counts.get(status, 0))
    yield changes
    by_provider = dict(
        DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
        .values_list("integration__provider")
        .annotate(n=Count("id"))
    )
    depth = GaugeMetricFamily(
        "castiel_outbound_dead_letters", "Dead letters waiting for an operator (replay or discard)"
    )
    depth.add_metric([], sum(by_provider.values()))
    yield depth
    per_provider = GaugeMetricFamily(
        "castiel_outbound_dead_letters_by_provider",
        "Open dead letters per provider",
        labels=["provider"],
    )
    for provider, n in sorted(by_provider.items()):
        per_provider.add_metric([provider], n)
    yield per_provider


register_scrape_collector("outbound", outbound_states)
