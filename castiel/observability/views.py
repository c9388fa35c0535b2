from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from castiel.observability.metrics import ScrapeTimeCollector


def has_metrics_token(request) -> bool:
    """Whether the request carries ``Authorization: Bearer <CASTIEL_METRICS_TOKEN>`` (never
    true while no token is configured)."""
    token = settings.CASTIEL_METRICS_TOKEN
    if not token:
        return False
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(supplied.encode(), token.encode())


@never_cache
def metrics_view(request):
    if settings.CASTIEL_METRICS_TOKEN and not has_metrics_token(request):
        return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ScrapeTimeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
