"""Prometheus metrics of notifications (shared by every process, see observability.metrics)."""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from castiel.observability.metrics import register_scrape_collector

EVENTS = Counter("castiel_notify_events_total", "Notification events raised", ["kind"])
INCIDENTS = Counter(
    "castiel_notify_incidents_total", "Incidents opened and resolved", ["kind", "change"]
)
DELIVERIES = Counter(
    "castiel_notify_deliveries_total",
    "Delivery attempts by channel type and outcome (delivered, retry, dead, deferred)",
    ["channel_type", "outcome"],
)
DELIVERY_DURATION = Histogram(
    "castiel_notify_delivery_duration_seconds",
    "Time to send one notification",
    ["channel_type"],
)


def _collect():
    from django.db.models import Count

    from notifications.models import Delivery, Incident

    live = GaugeMetricFamily(
        "castiel_notify_live_incidents", "Open or acknowledged incidents", labels=["state"]
    )
    for row in (
        Incident.objects.filter(state__in=Incident.LIVE).values("state").annotate(n=Count("id"))
    ):
        live.add_metric([row["state"]], row["n"])
    yield live
    pending = GaugeMetricFamily(
        "castiel_notify_deliveries", "Deliveries waiting or dead", labels=["status"]
    )
    for row in (
        Delivery.objects.filter(status__in=[*Delivery.PENDING, Delivery.Status.DEAD])
        .values("status")
        .annotate(n=Count("id"))
    ):
        pending.add_metric([row["status"]], row["n"])
    yield pending


register_scrape_collector("notifications", _collect)
