"""A lean server span for the one endpoint that runs at the platform's full rate: the webhook
receiver (``traced_endpoint``).

Every other request is traced by ``opentelemetry-instrumentation-django``. On the receiver
that middleware cost more CPU than the rest of tracing together (docs/telemetry.md,
docs/benchmarks.md) for one span: it resolves the URL a second time for the span's name,
builds the absolute URL three times for its exclusion list, reads the custom-header settings
and walks every request header for them. We deliberately do not use it there: Castiel's
subclass of its middleware (:mod:`castiel.observability.django_middleware`) hands the
receiver's requests straight on, and this decorator opens the request's SERVER span through
the OpenTelemetry API itself, with the incoming trace context (W3C ``traceparent``, the
standard propagators) and the attributes the Django instrumentation would give it under the
same (default) semantic conventions: ``http.method``, ``http.route``, ``http.target`` (the
query redacted), ``http.scheme``, ``http.status_code``, and Castiel's correlation id.
Exporters see the same kind of span either way (Azure Monitor makes it a request).

If the Django instrumentation traces the request anyway (its own middleware configured by
hand), this adds no second span. Off, it is one ``None`` check.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from castiel.observability import tracing
from castiel.observability.redaction import redact_query


def traced_endpoint(view):
    """Decorate a hot view with its own lean SERVER span (see the module's docstring)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        tracer = tracing.tracer()
        if tracer is None:
            return view(request, *args, **kwargs)
        return _traced(tracer, view, request, args, kwargs)

    return wrapper


@functools.cache
def _api():
    """What a traced request needs from OpenTelemetry, imported on the first one only."""
    from opentelemetry import context, trace

    from castiel.observability import carrier

    return SimpleNamespace(
        current_span=carrier.current_span,
        extract=carrier.extract_wsgi,
        in_context=trace.set_span_in_context,
        attach=context.attach,
        detach=context.detach,
        error=trace.Status(trace.StatusCode.ERROR),
    )


@functools.lru_cache(maxsize=8)  # a process has one tracer; tests swap theirs in
def _starter(tracer):
    """How the receiver starts its span with ``tracer``: a lean span where it is exactly
    equivalent to the SDK's (:mod:`castiel.observability.lean_span`), else the SDK's."""
    from opentelemetry.trace import SpanKind

    from castiel.observability.lean_span import recorder_for

    recorder = recorder_for(tracer)
    if recorder is not None:
        return recorder.start

    def start(name, parent, attributes):
        return tracer.start_span(name, parent, SpanKind.SERVER, attributes)

    return start


def _traced(tracer, view, request, args, kwargs):
    api = _api()
    if api.current_span().is_recording():
        return view(request, *args, **kwargs)  # already traced by the Django middleware
    match = request.resolver_match
    route = match.route if match is not None else ""
    meta = request.META
    query = meta.get("QUERY_STRING", "")
    target = request.path + ("?" + redact_query(query) if query else "")
    attributes = {
        "http.method": request.method,
        "http.route": route,
        "http.target": target,
        "http.scheme": request.scheme,
    }
    parent = api.extract(meta)
    # A span started and attached: what start_as_current_span does, without its two
    # generator-based context managers (a measurable part of a traced delivery's CPU), and
    # a lean span where it is equivalent to the SDK's (lean_span.py).
    span = _starter(tracer)(f"{request.method} {route}", parent, attributes)
    token = api.attach(api.in_context(span, parent))
    try:
        response = view(request, *args, **kwargs)
    except BaseException as exc:
        tracing.record_error(exc)  # its type only: the message may quote data
        raise
    else:
        if span.is_recording():
            span.set_attribute("http.status_code", response.status_code)
            tracing.name_correlation_id(span, request)
            if response.status_code >= 500:
                span.set_status(api.error)
        return response
    finally:
        api.detach(token)
        span.end()
