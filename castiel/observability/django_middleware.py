"""The Django instrumentation's middleware, minus the webhook receiver.

``opentelemetry-instrumentation-django`` traces every request through one middleware; its
exclusion list is checked against the absolute URL, which the middleware builds three times
per request (process_request, process_view, process_response) — on the receiver, the one
endpoint that runs at the platform's full rate, that alone was a measurable part of a
receipt's CPU (docs/telemetry.md). The receiver opens its own lean span
(:mod:`castiel.observability.server_span`), so this subclass hands its requests straight on,
by a prefix test on the path, and leaves everything else to the instrumentation unchanged.

Imported only while tracing is on (``tracing._instrument`` names it as the middleware the
instrumentor inserts), so OpenTelemetry stays unimported when tracing is off.
"""

from __future__ import annotations

from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

# Where the receiver's URLs live (webhooks/urls.py, included at the root): nothing else does.
RECEIVER_PREFIX = "/webhooks/"


class TracingMiddleware(_DjangoMiddleware):
    def __call__(self, request):
        if request.path_info.startswith(RECEIVER_PREFIX):
            return self.get_response(request)
        return super().__call__(request)

    def process_view(self, request, view_func, *args, **kwargs):
        if request.path_info.startswith(RECEIVER_PREFIX):
            return None
        return super().process_view(request, view_func, *args, **kwargs)

    def process_exception(self, request, exception):
        if request.path_info.startswith(RECEIVER_PREFIX):
            return None
        return super().process_exception(request, exception)
