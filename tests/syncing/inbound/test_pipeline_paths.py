"""One pipeline per task: a record is decided the same way whichever path brings it.

A provider object can arrive by a pull (the worker), by a webhook (``sync.upsert_record``) or
be looked at by a dry run (the admin page and the API's preview). All of them build the task's
page pipeline in ``syncing.inbound.pipeline.pipeline_for_task``; these tests hold the same object up
to each path and compare what they store: the record, its hashes and match keys, and its
history.
"""

from __future__ import annotations

import json

import pytest

from syncing.inbound.preview import sync_task_preview
from syncing.models import RecordChange, SyncRun
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope
from tests.syncing.helpers import make_integration, make_task, run_once
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.django_db,
    pytest.mark.usefixtures("no_push_rules"),
]

CUSTOMER = {
    "id": "cus_1",
    "object": "customer",
    "email": "ada@example.com",
    "name": "Ada",
    "updated": "2024-05-01T10:00:00Z",
}


class Provider:
    """A generic REST provider on 127.0.0.1 whose customer list the test sets."""

    def __init__(self, server):
        self.records: list[dict] = []
        server.route("GET", "/customers")(lambda request: (200, {}, {"data": self.records}))
        self.url = server.url


def source(tenant, provider: Provider, *, name: str):
    integration = make_integration(
        tenant,
        provider.url,
        name=name,
        records_path="data",
        updated_at_field="updated",
        pagination={"style": "none"},
    )
    task = make_task(integration, "customers", dedup_strategy="content_hash")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=integration
    )
    return task, registration


def deliver(registration, obj: dict, n: int = 1) -> WebhookEvent:
    body = {"id": f"evt_{n}", "type": "customer.updated", "created": 1700000000 + n}
    body["data"] = {"object": obj}
    event = make_event(
        registration, status=WebhookEvent.Status.RECEIVED, body=json.dumps(body).encode()
    )
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.last_error
    return event


def pull(task, enqueued) -> SyncRun:
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return run


def stored(task) -> dict:
    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    return {r.external_id: r for r in get_store().iter_scope(scope)}


def shape(record) -> dict:
    """What a path decides about a record (ids differ between integrations, so not those)."""
    return {
        "external_id": record.external_id,
        "data": record.data,
        "content_hash": record.content_hash,
        "base_hash": record.base_hash,
        "match_keys": record.match_keys,
        "remote_updated_at": record.remote_updated_at,
        "remote_version": record.remote_version,
        "version": record.version,
    }


def history_of(task) -> list[tuple]:
    return list(
        RecordChange.objects.filter(integration_id=task.integration_id)
        .order_by("id")
        .values_list("external_id", "action", "fields")
    )


def test_a_record_that_arrived_by_webhook_is_matched_by_a_pull_as_a_pulled_one_would_be(
    tenant, http_server, enqueued
):
    """content_hash dedup ignores the provider's id and updated-at fields; a webhook used to
    hash them in, so a copy of the record under another id, pulled later, was not recognised
    as the duplicate it is (two records where a pull-only sync keeps one)."""
    provider = Provider(http_server)
    task, registration = source(tenant, provider, name="Webhook first")

    deliver(registration, CUSTOMER)
    provider.records = [{**CUSTOMER, "id": "cus_2", "updated": "2024-05-02T10:00:00Z"}]
    run = pull(task, enqueued)

    assert run.dedup_rules == {"content": 1}
    assert list(stored(task)) == ["cus_1"]


def test_the_same_object_by_pull_webhook_and_dry_run_gives_the_same_record_and_history(
    tenant, http_server, enqueued
):
    provider = Provider(http_server)
    provider.records = [CUSTOMER]
    pulled_task, _ = source(tenant, provider, name="Pulled")
    hooked_task, hooked_registration = source(tenant, provider, name="Webhook")
    previewed_task, _ = source(tenant, provider, name="Previewed")

    pull(pulled_task, enqueued)
    deliver(hooked_registration, CUSTOMER)
    preview = sync_task_preview(task=previewed_task)

    pulled, hooked = stored(pulled_task)["cus_1"], stored(hooked_task)["cus_1"]
    assert shape(hooked) == shape(pulled)
    assert history_of(hooked_task) == history_of(pulled_task) == [("cus_1", "created", [])]
    assert preview.ok, preview.error
    [item] = preview.items
    assert (item.action, item.external_id, item.after) == ("created", "cus_1", pulled.data)
    assert stored(previewed_task) == {}

    # And the next arrival of the same object by the other path changes nothing.
    deliver(hooked_registration, CUSTOMER, n=2)
    pull(hooked_task, enqueued)
    assert shape(stored(hooked_task)["cus_1"]) == shape(pulled)
    assert history_of(hooked_task) == [("cus_1", "created", [])]
