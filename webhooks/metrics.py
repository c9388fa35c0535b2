"""Prometheus metrics of the webhook receiver and processing."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from castiel.observability.metrics import register_scrape_collector

DELIVERIES = Counter(
    "castiel_webhook_deliveries_total",
    "Webhook deliveries by scheme, outcome and reason code",
    ["scheme", "outcome", "reason"],
)
RECEIVE_DURATION = Histogram(
    "castiel_webhook_receive_seconds",
    "Time from request to stored event (accepted deliveries)",
    ["scheme"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@functools.lru_cache(maxsize=64)  # a handful of schemes; children are never removed here
def accepted(scheme: str):
    """``(deliveries counter, receive-time histogram)`` of an accepted delivery of ``scheme``:
    the labelled children, looked up once. ``labels()`` per delivery (a lock, the label
    values checked and joined) was ~11 µs of the receiver's CPU (docs/benchmarks.md)."""
    return DELIVERIES.labels(scheme, "accepted", "ok"), RECEIVE_DURATION.labels(scheme)


PROCESSED = Counter(
    "castiel_webhook_processed_total",
    "Webhook events processed, by parser and resulting status",
    ["parser", "status"],
)


def pending_events():
    from django.db.models import Count

    from webhooks.models import WebhookEvent

    family = GaugeMetricFamily(
        "castiel_webhook_events_pending", "Accepted events not processed yet", labels=["status"]
    )
    counts = dict.fromkeys(WebhookEvent.PENDING_STATUSES, 0)
    rows = (
        WebhookEvent.objects.filter(status__in=WebhookEvent.PENDING_STATUSES)
        .values("status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["status"]] = row["n"]
    for status, n in counts.items():
        family.add_metric([str(status)], n)
    yield family


register_scrape_collector("webhook_events_pending", pending_events)
