"""The webhook receiver's lean server span (castiel/observability/server_span.py): the span
the Django instrumentation would give it, for a fraction of the CPU."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from castiel.observability import server_span, tracing
from castiel.observability.lean_span import recorder_for
from tests.webhooks.factories import make_registration
from tests.webhooks.support import github_headers

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class _Finished:
    """The exporter's spans, once the provider's processors handed over what they hold."""

    def __init__(self, provider, exporter):
        self.provider, self.exporter = provider, exporter

    def get_finished_spans(self):
        self.provider.force_flush()
        return self.exporter.get_finished_spans()


@pytest.fixture(params=["sdk", "lean"])
def spans(request, monkeypatch):
    """Castiel's tracer, its receiver span started by the SDK (a synchronous processor) or
    lean (a batch processor, as Castiel's OTLP set-up: castiel/observability/lean_span.py)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = BatchSpanProcessor if request.param == "lean" else SimpleSpanProcessor
    provider.add_span_processor(processor(exporter))
    tracer = provider.get_tracer("castiel")
    assert (recorder_for(tracer) is not None) == (request.param == "lean")
    monkeypatch.setattr(tracing, "_tracer", tracer)
    yield provider.get_tracer("outer"), _Finished(provider, exporter)
    provider.shutdown()


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_delivery_is_one_server_span_continuing_the_callers_trace(client, tenant, spans):
    _outer, exporter = spans
    registration = make_registration(tenant, scheme="github", secret="s3cret")
    body = json.dumps({"action": "opened", "issue": {"id": 1, "title": "Ada's plan"}}).encode()
    response = client.post(
        f"/webhooks/{registration.pk}/?token=t0k3n&page=2",
        data=body,
        content_type="application/json",
        HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01",
        **github_headers("s3cret", body, event="issues", delivery="d-1"),
    )
    assert response.status_code in (200, 202), response.content
    [span] = exporter.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name.startswith("POST ") and "webhooks/" in span.name
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT_ID
    attributes = dict(span.attributes)
    assert attributes["http.method"] == "POST"
    assert attributes["http.status_code"] == response.status_code
    assert "webhooks/" in attributes["http.route"]
    # The query as received, its secret-looking values redacted.
    assert attributes["http.target"] == (
        f"/webhooks/{registration.pk}/?token=%5Bredacted%5D&page=2"
    )
    assert attributes["castiel.tenant"] == str(tenant.pk)
    assert attributes["castiel.registration"] == str(registration.pk)
    assert attributes["castiel.correlation_id"] == response.headers["X-Correlation-ID"]
    assert "t0k3n" not in json.dumps(attributes) and "plan" not in json.dumps(attributes)


def _request():
    request = RequestFactory().post("/webhooks/00000000-0000-0000-0000-000000000000/")
    request.resolver_match = None
    return request


def test_a_failing_view_marks_its_span_failed_with_the_error_type_only(spans):
    _outer, exporter = spans

    @server_span.traced_endpoint
    def broken(request):
        raise RuntimeError("ada@example.com")

    with pytest.raises(RuntimeError):
        broken(_request())

    @server_span.traced_endpoint
    def unavailable(request):
        return HttpResponse(status=503)

    assert unavailable(_request()).status_code == 503
    # Both spans ended and left the context as it was, raised or not.
    assert not trace.get_current_span().is_recording()
    failed, answered_503 = exporter.get_finished_spans()
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["error.type"] == "RuntimeError"
    assert "ada@example.com" not in json.dumps([dict(failed.attributes), failed.status.description])
    assert answered_503.status.status_code == StatusCode.ERROR
    assert answered_503.attributes["http.status_code"] == 503


def test_no_second_span_when_the_request_is_traced_already(spans):
    outer, exporter = spans

    @server_span.traced_endpoint
    def view(request):
        return HttpResponse(status=200)

    with outer.start_as_current_span("GET (Django instrumentation)"):
        view(_request())
    assert [s.name for s in exporter.get_finished_spans()] == ["GET (Django instrumentation)"]


def test_off_the_view_runs_untouched(monkeypatch):
    monkeypatch.setattr(tracing, "_tracer", None)

    @server_span.traced_endpoint
    def view(request):
        return HttpResponse(status=204)

    assert view(_request()).status_code == 204


def test_the_django_instrumentation_leaves_out_the_receiver_only(monkeypatch):
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    # The receiver's own span off: only the instrumentation's middleware could trace it.
    monkeypatch.setattr(tracing, "_tracer", None)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument_django(tracer_provider=provider)
    try:
        client = Client()  # a new handler: it loads the instrumented middleware
        assert client.get("/webhooks/0b4c7f0e-6a55-4f57-9e07-0a4b1d5f6c11/").status_code == 405
        assert client.get("/api/v1/").status_code in (200, 401, 403, 404)
    finally:
        DjangoInstrumentor().uninstrument()
    # The receiver's request was handed on untraced; any other path gets the span.
    [api] = exporter.get_finished_spans()
    assert api.kind == SpanKind.SERVER and api.attributes["http.method"] == "GET"
    assert "webhooks" not in api.attributes.get("http.target", "")
