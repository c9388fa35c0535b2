"""Webhook follow-ups applied by the sync engine: the record lands exactly as a pull would."""

from __future__ import annotations

import json

import pytest

from syncing.models import SyncTask
from tests.syncing.helpers import make_integration, make_task, records_of
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.django_db,
    pytest.mark.usefixtures("no_push_rules"),
]


@pytest.fixture
def source(tenant):
    integration = make_integration(tenant, "http://127.0.0.1:9/", name="Stripe-like")
    task = make_task(integration, "customers")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=integration
    )
    return integration, task, registration


def deliver(registration, event_type: str, obj: dict, n: int = 1) -> WebhookEvent:
    body = {
        "id": f"evt_{n}",
        "type": event_type,
        "created": 1700000000 + n,
        "data": {"object": obj},
    }
    event = make_event(
        registration, status=WebhookEvent.Status.RECEIVED, body=json.dumps(body).encode()
    )
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


CUSTOMER = {"id": "cus_1", "object": "customer", "email": "ada@example.com", "name": "Ada"}


def test_created_updated_and_deleted_customers_reach_the_record_store(source):
    _integration, task, registration = source

    created = deliver(registration, "customer.created", CUSTOMER, 1)
    assert created.status == WebhookEvent.Status.PROCESSED, created.last_error
    assert records_of(task) == {"cus_1": CUSTOMER}
    assert created.actions[0]["result"]["outcome"] == "created"

    renamed = {**CUSTOMER, "name": "Ada Lovelace"}
    assert deliver(registration, "customer.updated", renamed, 2).status == "processed"
    assert records_of(task)["cus_1"]["name"] == "Ada Lovelace"

    again = deliver(registration, "customer.updated", renamed, 3)
    assert again.actions[0]["result"]["outcome"] == "unchanged"

    gone = deliver(
        registration, "customer.deleted", {"id": "cus_1", "object": "customer", "deleted": True}, 4
    )
    assert gone.actions[0]["result"]["outcome"] == "deleted"
    assert records_of(task) == {}
    assert "cus_1" in records_of(task, include_deleted=True)


def test_an_older_event_delivered_late_does_not_overwrite_newer_data(source):
    """Stripe promises no delivery order and customers carry no modification time: the
    event's time decides."""
    _integration, task, registration = source
    newer = {**CUSTOMER, "name": "Ada Lovelace"}
    assert deliver(registration, "customer.updated", newer, 5).status == "processed"
    late = deliver(registration, "customer.created", CUSTOMER, 1)
    assert late.actions[0]["result"]["outcome"] == "unchanged"
    assert records_of(task)["cus_1"]["name"] == "Ada Lovelace"


def test_an_entity_without_a_sync_task_is_ignored_not_failed(tenant):
    integration = make_integration(tenant, "http://127.0.0.1:9/")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=integration
    )
    event = deliver(registration, "customer.created", CUSTOMER)
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.actions[0]["result"]["outcome"] == "ignored"


def test_a_registration_without_an_integration_fails_with_a_clear_reason(tenant):
    registration = make_registration(tenant, scheme="stripe", secret="whsec_test_secret")
    event = deliver(registration, "customer.created", CUSTOMER)
    assert event.status == WebhookEvent.Status.FAILED
    assert "not linked to an integration" in event.last_error


def test_a_paused_integration_keeps_the_event_for_a_retry(source):
    integration, task, registration = source
    integration.status = integration.Status.REAUTH_REQUIRED
    integration.save()
    event = deliver(registration, "customer.created", CUSTOMER)
    assert event.status != WebhookEvent.Status.PROCESSED
    assert records_of(task) == {}
    assert "reauth_required" in event.last_error


def test_a_change_notice_queues_the_owning_sync_task(tenant, enqueued):
    integration = make_integration(tenant, "http://127.0.0.1:9/")
    task = make_task(integration, "repositories")
    registration = make_registration(tenant, scheme="github", integration=integration)
    body = {"ref": "refs/heads/main", "repository": {"id": 42, "full_name": "o/r"}, "commits": []}
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        headers={"X-Github-Event": "push", "X-Github-Delivery": "d-9"},
        body=json.dumps(body).encode(),
    )
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.last_error
    assert event.actions[0]["result"]["outcome"] == "sync_queued"
    task.refresh_from_db()
    assert task.status == SyncTask.Status.QUEUED
    [(func, args, kind)] = enqueued.drain()
    assert (func, args[0], kind) == ("syncing.tasks.run_inbound_batch", task.lease_owner, "inbound")
