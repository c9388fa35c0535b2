"""Prometheus metrics shared by every web and worker process.

prometheus_client's multiprocess mode is on (settings set ``PROMETHEUS_MULTIPROC_DIR`` before
anything imports the client), so counters and histograms written by gunicorn workers and
qcluster workers are summed at scrape time. Values that are cheaper to read than to keep in
step (queue depths, dead-letter depth) are computed at scrape time by registered collectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric

HTTP_REQUESTS = Counter(
    "castiel_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "castiel_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)
TASKS = Counter("castiel_tasks_total", "Worker task runs", ["task", "outcome"])
TASK_DURATION = Histogram("castiel_task_duration_seconds", "Worker task duration", ["task"])
OUTBOUND_REQUESTS = Counter(
    "castiel_outbound_requests_total", "Outbound HTTP requests", ["provider", "outcome"]
)
OUTBOUND_DURATION = Histogram(
    "castiel_outbound_request_duration_seconds", "Outbound HTTP request duration", ["provider"]
)
# Traces (castiel/observability/tracing.py): spans handed to an exporter, and spans lost —
# "queue_full" (the batch processor's bounded queue was full) or "export_failed" (the
# exporter failed or was unreachable). Both stay at zero while tracing is off.
SPANS_EXPORTED = Counter("castiel_trace_spans_exported_total", "Spans exported")
SPANS_DROPPED = Counter(
    "castiel_trace_spans_dropped_total", "Spans lost before reaching an exporter", ["reason"]
)

# name -> function returning metric families, evaluated at every scrape.
_scrape_collectors: dict[str, Callable[[], Iterable[Metric]]] = {}


def register_scrape_collector(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Register a function evaluated at scrape time (e.g. a queue depth read from the DB)."""
    _scrape_collectors[name] = collect


class ScrapeTimeCollector:
    def collect(self):
        for collect in list(_scrape_collectors.values()):
            yield from collect()
