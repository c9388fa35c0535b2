"""What Castiel's own code names on its spans: ids and outcomes, never data."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from castiel.observability import tracing
from tests.webhooks.conftest import recorded_actions  # noqa: F401  (fixture)
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(tracing, "_tracer", tracer)
    return tracer, exporter


@pytest.mark.usefixtures("recorded_actions")
def test_webhook_processing_names_tenant_registration_event_and_outcome(tenant, spans):
    tracer, exporter = spans
    registration = make_registration(tenant, scheme="github")
    body = {"action": "opened", "issue": {"id": 7, "title": "Ada's secret plan"}}
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        headers={"X-Github-Event": "issues", "X-Github-Delivery": "d-1"},
        body=json.dumps(body).encode(),
    )
    with tracer.start_as_current_span("castiel.task"):
        assert processing.event_process(event_id=event.pk) == "processed"
    [span] = exporter.get_finished_spans()
    assert {k: v for k, v in span.attributes.items() if k.startswith("castiel.")} == {
        "castiel.tenant": str(tenant.pk),
        "castiel.registration": str(registration.pk),
        "castiel.event": str(event.pk),
        "castiel.provider": "github",
        "castiel.outcome": "processed",
        "castiel.attempt": 1,
    }
    assert "secret plan" not in json.dumps(dict(span.attributes))
