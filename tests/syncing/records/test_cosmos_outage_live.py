"""Live: Cosmos DB unreachable for a while as syncs, webhooks and API edits go on.

The real cosmosdb-server sits behind a loopback TCP proxy (tests/support/tcp_proxy.py) that
refuses every connection for the outage; the sandbox CRM is served by a live Castiel server.
The outage lasts 30 s (``CASTIEL_TEST_COSMOS_OUTAGE_SECONDS`` shortens it while iterating).
What is checked does not depend on the length: no 500 anywhere, /healthz degraded during and
ok after, every API edit and webhook event applied exactly once afterwards, and the records
equal the provider's.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from django.utils import timezone

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import OutboundChange, SyncRun, SyncTask
from tests.syncing.helpers import make_integration, make_task, records_of, run_once
from tests.syncing.outbound_support import push_all, sandbox_push_task
from webhooks.models import WebhookEvent

OUTAGE_SECONDS = float(os.environ.get("CASTIEL_TEST_COSMOS_OUTAGE_SECONDS", "30"))

pytestmark = [
    pytest.mark.usefixtures("no_push_rules"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def test_an_outage_of_the_record_store_loses_nothing_and_answers_no_500(
    tenant,
    api,
    client,
    sandbox,
    enqueued,
    pushes,
    fast_retries,
    cosmos_outage_store,
    cosmos_proxy,
):
    from tests.webhooks.factories import make_event, make_registration
    from webhooks import processing

    store = cosmos_outage_store
    account = sandbox.account()
    sandbox.seed(account, 12)
    contacts = sandbox_push_task(tenant, sandbox, account)
    assert run_once(contacts, enqueued).status == SyncRun.Status.SUCCEEDED
    stripe = make_integration(tenant, "http://127.0.0.1:9/", name="Stripe-like")
    customers = make_task(stripe, "customers")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=stripe
    )
    records = {r.external_id: r for r in store.iter_scope(_scope(contacts))}
    objects = list(SandboxObject.objects.filter(account=account).order_by("id"))

    statuses, health, edits, events, expected_customers = [], [], [], [], {}
    with cosmos_proxy.down():
        deadline, n = time.monotonic() + OUTAGE_SECONDS, 0
        while time.monotonic() < deadline or n < 3:
            n += 1
            # The CRM changes; a sync runs; a webhook arrives; a tenant edits through the API.
            remote = objects[n % 4]
            sandbox_services.object_update(
                obj=SandboxObject.objects.get(pk=remote.pk), data={"phone": f"+1415555{n:04d}"}
            )
            SyncTask.objects.filter(pk=contacts.pk).update(next_run_at=timezone.now())
            run = run_once(contacts, enqueued)
            assert run is None or run.error_code == "record_store_unavailable", (
                run.error_code,
                run.error_summary,
            )
            customer = {"id": f"cus_{n % 3}", "object": "customer", "name": f"v{n}"}
            expected_customers[customer["id"]] = customer
            event = make_event(
                registration,
                status=WebhookEvent.Status.RECEIVED,
                body=json.dumps(
                    {
                        "id": f"evt_{n}",
                        "type": "customer.updated",
                        "created": 1700000000 + n,
                        "data": {"object": customer},
                    }
                ).encode(),
            )
            processing.event_process(event_id=event.pk)
            event.refresh_from_db()
            assert event.status == WebhookEvent.Status.RETRYING, event.last_error
            events.append(event.pk)
            target = records[str(objects[4 + n % 4].pk)]
            edit = {"company": f"Edited {n}"}
            response = api.patch(f"/api/v1/records/{target.id}/", {"data": edit}, format="json")
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response["Retry-After"]
                edits.append((target.id, edit))
            health.append(client.get("/healthz").json()["checks"]["record_store"]["status"])
            time.sleep(0.5)

    assert 500 not in statuses and set(statuses) == {503}, statuses
    assert set(health) == {"degraded"}, health
    assert client.get("/healthz").json()["checks"]["record_store"]["status"] == "ok"

    # Back: the clients retry what they were told to retry, exactly once each.
    for record_id, edit in edits:
        response = api.patch(f"/api/v1/records/{record_id}/", {"data": edit}, format="json")
        assert response.status_code == 200, response.json()
    WebhookEvent.objects.filter(pk__in=events).update(next_attempt_at=timezone.now())
    for event_id in events:
        processing.event_process(event_id=event_id)
    assert set(WebhookEvent.objects.filter(pk__in=events).values_list("status", flat=True)) == {
        WebhookEvent.Status.PROCESSED
    }
    assert records_of(customers, store=store) == expected_customers

    updates = OutboundChange.objects.filter(operation="update")
    assert updates.count() == len({rid for rid, _ in edits}), "one change per record edited"
    push_all(pushes)
    assert set(updates.values_list("status", flat=True)) == {"succeeded"}
    SyncTask.objects.filter(pk=contacts.pk).update(next_run_at=timezone.now())
    run = run_once(contacts, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error_code, run.error_summary)
    assert records_of(contacts, store=store) == sandbox.expected(account)
    last_edit = {}
    for record_id, edit in edits:
        last_edit[record_id] = edit["company"]
    for record_id, company in last_edit.items():
        assert store.get(tenant.id, record_id).data["company"] == company


def _scope(task):
    from syncing.records.stores.base import Scope

    return Scope(task.tenant_id, task.integration_id, task.entity_type)
