"""What Castiel's own code names on its spans: ids and outcomes, never data."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from castiel.observability import tracing
from syncing.models import SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope
from tests.syncing.helpers import run_once
from tests.syncing.outbound_support import push_all, sandbox_push_task
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing, routing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(tracing, "_tracer", tracer)
    return tracer, exporter


@pytest.mark.embedded
def test_webhook_processing_names_tenant_registration_event_and_outcome(
    tenant, spans, recorded_actions
):
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
    *actions, span = exporter.get_finished_spans()
    assert {k: v for k, v in span.attributes.items() if k.startswith("castiel.")} == {
        "castiel.tenant": str(tenant.pk),
        "castiel.registration": str(registration.pk),
        "castiel.event": str(event.pk),
        "castiel.provider": "github",
        "castiel.outcome": "processed",
        "castiel.attempt": 1,
    }
    # Each follow-up action its own span, named for it, a child of the processing.
    assert [a.name for a in actions] == [
        f"webhook.action {name}" for name, _, _ in recorded_actions
    ]
    assert actions
    for action in actions:
        assert action.parent.span_id == span.context.span_id
        assert dict(action.attributes) == {
            "castiel.tenant": str(tenant.pk),
            "castiel.registration": str(registration.pk),
            "castiel.event": str(event.pk),
            "castiel.outcome": "ok",
        }
    assert "secret plan" not in json.dumps([dict(s.attributes) for s in [span, *actions]])


@pytest.mark.embedded
def test_a_failing_action_span_names_the_error_type_never_its_message(
    tenant, spans, recorded_actions
):
    tracer, exporter = spans

    def leaky(event, context):
        raise ValueError("could not store ada@example.com")

    routing.register_action(routing.EVALUATE_RULES, leaky)  # the fixture restores it
    registration = make_registration(tenant, scheme="github")
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        headers={"X-Github-Event": "issues", "X-Github-Delivery": "d-2"},
        body=json.dumps({"action": "opened", "issue": {"id": 8}}).encode(),
    )
    with tracer.start_as_current_span("castiel.task"):
        assert processing.event_process(event_id=event.pk) == "retrying"
    [failed] = [s for s in exporter.get_finished_spans() if s.name.endswith("evaluate_rules")]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.attributes["castiel.outcome"] == "error"
    assert not failed.events  # no exception event: its message may quote data
    assert "ada@example.com" not in json.dumps(dict(failed.attributes))


def _castiel(span) -> dict:
    return {k: v for k, v in span.attributes.items() if k.startswith("castiel.")}


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_each_pushed_change_and_provider_batch_has_a_span_named_for_its_operation(
    tenant, sandbox, enqueued, pushes, spans
):
    _, exporter = spans
    account = sandbox.account()
    sandbox.seed(account, 1)
    task = sandbox_push_task(
        tenant,
        sandbox,
        account,
        config={"batch_path": "/contacts/batch/{operation}/", "conditional_writes": False},
    )
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    [existing] = get_store().iter_scope(Scope(tenant.id, task.integration_id, "contacts"))
    created = [
        local_changes.record_create(
            integration=task.integration,
            entity_type="contacts",
            data={"first_name": f"Zebulon{i}", "email": f"zebulon{i}@leakcheck.example"},
        ).change
        for i in range(3)
    ]
    deleted = local_changes.record_delete(tenant_id=tenant.id, record_id=existing.id).change
    exporter.clear()

    assert push_all(pushes) == {"succeeded": 4}
    pushed = [s for s in exporter.get_finished_spans() if s.name.startswith("push ")]
    by_name = {s.name: s for s in pushed}
    assert sorted(by_name) == ["push create contacts", "push delete contacts"]
    ids = {"castiel.tenant": str(tenant.pk), "castiel.integration": str(task.integration_id)}
    # The provider batch: one span for its one request, naming its changes and their count.
    assert _castiel(by_name["push create contacts"]) == {
        **ids,
        "castiel.provider": "generic_rest",
        "castiel.entity_type": "contacts",
        "castiel.operation": "create",
        "castiel.count": 3,
        "castiel.change": tuple(str(c.pk) for c in created),
        "castiel.outcome": "succeeded",
    }
    # A change pushed alone: its own span.
    assert _castiel(by_name["push delete contacts"]) == {
        **ids,
        "castiel.provider": "generic_rest",
        "castiel.change": str(deleted.pk),
        "castiel.record": str(existing.id),
        "castiel.entity_type": "contacts",
        "castiel.operation": "delete",
        "castiel.attempt": 1,
        "castiel.outcome": "succeeded",
    }
    assert "zebulon" not in json.dumps([dict(s.attributes) for s in pushed]).lower()


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_a_failed_push_span_is_an_error_with_the_change_outcome(
    tenant, sandbox, enqueued, pushes, spans
):
    _, exporter = spans
    account = sandbox.account()
    task = sandbox_push_task(tenant, sandbox, account)
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    change = local_changes.record_create(
        integration=task.integration,
        entity_type="contacts",
        data={"first_name": "Zebulon", "email": "not-an-email"},
    ).change
    exporter.clear()

    assert push_all(pushes) == {"dead": 1}
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("push ")]
    assert span.name == "push create contacts"
    assert span.attributes["castiel.change"] == str(change.pk)
    assert span.attributes["castiel.outcome"] == "dead"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"]
    assert "not-an-email" not in json.dumps(dict(span.attributes))
