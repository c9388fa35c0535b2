"""Credential metrics: refresh attempts by outcome, refresh durations, credentials by status."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from castiel.observability.metrics import register_scrape_collector

REFRESHES = Counter(
    "castiel_token_refresh_total",
    "Token refresh attempts (skipped = another worker had refreshed already)",
    ["type", "trigger", "outcome"],
)
REFRESH_DURATION = Histogram(
    "castiel_token_refresh_duration_seconds",
    "Token refresh duration, lock wait included",
    ["type"],
)


def credentials_by_status():
    from django.db.models import Count

    from credentials.models import Credential

    family = GaugeMetricFamily(
        "castiel_credentials", "Credentials by type and status", labels=["type", "status"]
    )
    rows = Credential.objects.values("type", "status").annotate(n=Count("id")).order_by()
    for row in rows:
        family.add_metric([row["type"], row["status"]], row["n"])
    yield family


register_scrape_collector("credentials_by_status", credentials_by_status)
