"""Correlation id in, correlation id out, and request metrics."""

from __future__ import annotations

import time

from castiel.observability import metrics
from castiel.observability.context import correlation_id_var, new_id, sanitize

HEADER = "X-Correlation-ID"


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = sanitize(request.headers.get(HEADER)) or new_id()
        token = correlation_id_var.set(correlation_id)
        request.correlation_id = correlation_id
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            correlation_id_var.reset(token)
        response[HEADER] = correlation_id
        route = _route(request)
        metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(request.method, route).observe(time.perf_counter() - started)
        return response


def _route(request) -> str:
    """The URL pattern, not the path: ids in paths would explode label cardinality."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.view_name or "unknown"
