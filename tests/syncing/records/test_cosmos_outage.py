"""The Cosmos DB record store riding out an outage: the real cosmosdb-server, made unreachable
by a loopback TCP proxy in front of it (tests/support/tcp_proxy.py), never a mocked SDK."""

from __future__ import annotations

import json
import logging
import threading
import uuid

import pytest
from django.utils import timezone

from syncing.models import SyncRun, SyncTask
from syncing.records.stores.base import RecordStoreUnavailable, Scope, StaleRecordError
from tests.factories import IntegrationFactory
from tests.syncing.fixtures import COSMOS_TEST_KEY
from tests.syncing.helpers import make_integration, make_task, records_of, run_once
from tests.syncing.inbound.test_json_server_sync import CONFIGS
from tests.syncing.records.test_stores import make

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture
def scope(tenant):
    return Scope(tenant.id, IntegrationFactory(tenant=tenant).id, "contacts")


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_an_unreachable_server_is_reported_as_unavailable_then_recovers(
    cosmos_outage_store, cosmos_proxy, scope, mode
):
    store = cosmos_outage_store
    a = make(scope, "a", name="Ada")
    store.write(scope, [a], [])
    with cosmos_proxy.down(mode):
        with pytest.raises(RecordStoreUnavailable) as caught:
            store.get(scope.tenant_id, a.id)
        with pytest.raises(RecordStoreUnavailable):
            store.write(scope, [make(scope, "b")], [])
        with pytest.raises(RecordStoreUnavailable):
            store.ping()
    assert COSMOS_TEST_KEY not in str(caught.value)
    assert store.get(scope.tenant_id, a.id).data == a.data
    store.ping()


def test_a_store_opened_while_the_server_is_down_works_once_it_is_back(cosmos_proxy, monkeypatch):
    """Nothing is contacted at construction: Castiel starts while Cosmos DB is unreachable."""
    from syncing.records.stores.cosmos import CosmosRecordStore

    cosmos_proxy.set_mode("refuse")
    store = CosmosRecordStore(
        endpoint=cosmos_proxy.url,
        key=COSMOS_TEST_KEY,
        database="castiel-tests",
        container=f"records-{uuid.uuid4().hex[:12]}",
        timeout=1.0,
        endpoint_discovery=False,
    )
    with pytest.raises(RecordStoreUnavailable):
        store.ping()
    cosmos_proxy.set_mode("pass")
    store.ping()
    store.drop_container()


def test_a_deleted_container_is_recreated_without_a_restart(cosmos_outage_store, scope):
    store = cosmos_outage_store
    store.write(scope, [make(scope, "a")], [])
    # Someone deletes the container (or the database) under the running store.
    store.database.delete_container(store.container_name)
    assert store.get(scope.tenant_id, uuid.uuid4()) is None  # recreated, empty
    b = make(scope, "b", name="Bob")
    store.write(scope, [b], [])
    assert store.get(scope.tenant_id, b.id).data == b.data

    store._client.delete_database(store.database_name)
    page, _ = store.list_page(scope.tenant_id)
    assert page == []
    store.write(scope, [make(scope, "c")], [])
    assert [r.external_id for r in store.iter_scope(scope)] == ["c"]


def test_workers_starting_together_create_the_database_and_container_once(cosmos_proxy):
    """``create_*_if_not_exists`` reads then creates: racing processes both see "missing";
    the loser's 409 is success. Eight stores open the same new database at once."""
    from syncing.records.stores.cosmos import CosmosRecordStore

    database = f"castiel-race-{uuid.uuid4().hex[:8]}"
    workers = 8
    barrier, errors, stores = threading.Barrier(workers), [], []

    def start_worker():
        barrier.wait()
        try:
            store = CosmosRecordStore(
                endpoint=cosmos_proxy.url,
                key=COSMOS_TEST_KEY,
                database=database,
                container="records",
                endpoint_discovery=False,
            )
            stores.append(store)
            store.ping()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
    finally:
        stores[0]._client.delete_database(database)


# -- the API, /healthz, sync runs and webhooks while the store is down -------------------------


def test_the_api_answers_503_record_store_unavailable_with_retry_after(
    api, cosmos_outage_store, cosmos_proxy, tenant, scope
):
    a = make(scope, "a", name="Ada")
    cosmos_outage_store.write(scope, [a], [])
    with cosmos_proxy.down():
        for response in (
            api.get("/api/v1/records/"),
            api.get(f"/api/v1/records/{a.id}/"),
            api.patch(f"/api/v1/records/{a.id}/", {"data": {"name": "x"}}, format="json"),
        ):
            assert response.status_code == 503, response.content
            body = response.json()
            assert body["code"] == "record_store_unavailable", body
            assert int(response["Retry-After"]) >= 1
            assert COSMOS_TEST_KEY not in response.content.decode()
    assert api.get(f"/api/v1/records/{a.id}/").status_code == 200


def test_healthz_names_the_record_store_and_is_degraded_while_it_is_down(
    detailed_client, cosmos_outage_store, cosmos_proxy
):
    client = detailed_client  # the check's detail needs the metrics token
    checks = client.get("/healthz").json()["checks"]
    assert checks["record_store"]["status"] == "ok"
    assert "cosmos" in checks["record_store"]["detail"]
    with cosmos_proxy.down():
        response = client.get("/healthz")
        check = response.json()["checks"]["record_store"]
        assert check["status"] == "degraded" and "cosmos" in check["detail"], check
        assert COSMOS_TEST_KEY not in response.content.decode()
    assert client.get("/healthz").json()["checks"]["record_store"]["status"] == "ok"


def test_healthz_names_the_orm_store(detailed_client):
    client = detailed_client  # the check's detail needs the metrics token
    check = client.get("/healthz").json()["checks"]["record_store"]
    assert check["status"] == "ok" and check["detail"].startswith("orm"), check


CONTACTS = [
    {"id": str(i), "name": f"C{i}", "updatedAt": f"2024-01-01T00:00:{i:02d}.000Z"}
    for i in range(1, 26)
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.node
def test_a_sync_run_during_an_outage_fails_with_its_own_code_and_is_retried_with_backoff(
    tenant, json_server, enqueued, fast_retries, cosmos_outage_store, cosmos_proxy
):
    server = json_server("1", {"contacts": CONTACTS})
    task = make_task(make_integration(tenant, server.url, **CONFIGS["1"]))
    with cosmos_proxy.down():
        run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == "record_store_unavailable", (run.error_code, run.error_summary)
    assert run.retries >= 1, "the page was retried before giving up"
    task.refresh_from_db()
    assert task.status == SyncTask.Status.FAILED
    assert task.next_run_at > timezone.now(), "retried later, with backoff"
    assert task.checkpoint in ({}, None) or task.checkpoint.get("cursor") is None

    SyncTask.objects.filter(pk=task.pk).update(next_run_at=timezone.now())
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert records_of(task, store=cosmos_outage_store) == {c["id"]: c for c in CONTACTS}


@pytest.mark.django_db(transaction=True)
@pytest.mark.node
def test_a_page_racing_a_webhook_for_the_same_record_is_retried_not_failed(
    tenant, json_server, enqueued, fast_retries, cosmos_outage_store, monkeypatch
):
    """A webhook upsert writes a record between the page's read and its write: the page's
    conditional replace answers 412 (StaleRecordError); the page is read and applied again."""
    store = cosmos_outage_store
    server = json_server("1", {"contacts": CONTACTS[:5]})
    task = make_task(make_integration(tenant, server.url, **CONFIGS["1"]))
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED

    changed = [
        {**c, "name": c["name"] + "!", "updatedAt": "2024-02-01T00:00:00.000Z"}
        for c in CONTACTS[:5]
    ]
    server = json_server("1", {"contacts": changed})
    task.integration.config = {**task.integration.config, "base_url": server.url}
    task.integration.save()
    real_write, raced = store.write, []

    def write_after_a_webhook(scope, creates, updates):
        if updates and not raced:
            first = updates[0]
            webhook = store.get(scope.tenant_id, first.id)
            store.save_record(webhook.copy(data={**webhook.data, "via": "webhook"}))
            raced.append(first.id)
        return real_write(scope, creates, updates)

    monkeypatch.setattr(store, "write", write_after_a_webhook)
    run = run_once(task, enqueued)
    assert raced, "the interleaving happened"
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error_code, run.error_summary)
    assert records_of(task, store=store) == {c["id"]: c for c in changed}


def test_a_stale_write_is_still_refused_by_the_store(cosmos_outage_store, scope):
    a = make(scope, "a")
    cosmos_outage_store.write(scope, [a], [])
    current = cosmos_outage_store.get(scope.tenant_id, a.id)
    cosmos_outage_store.save_record(current.copy(data={"id": "a", "n": 1}))
    with pytest.raises(StaleRecordError):
        cosmos_outage_store.save_record(current.copy(data={"id": "a", "n": 2}))


def test_a_webhook_during_an_outage_is_retried_later_then_applied(
    tenant, cosmos_outage_store, cosmos_proxy
):
    from tests.webhooks.factories import make_event, make_registration
    from webhooks import processing
    from webhooks.models import WebhookEvent

    integration = make_integration(tenant, "http://127.0.0.1:9/", name="Stripe-like")
    task = make_task(integration, "customers")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=integration
    )
    customer = {"id": "cus_1", "object": "customer", "email": "a@example.com", "name": "Ada"}
    body = {"id": "evt_1", "type": "customer.created", "created": 1700000001}
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        body=json.dumps({**body, "data": {"object": customer}}).encode(),
    )
    with cosmos_proxy.down():
        processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.RETRYING, (event.status, event.last_error)
    assert "unavailable" in event.last_error
    WebhookEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.last_error
    assert records_of(task, store=cosmos_outage_store) == {"cus_1": customer}


# -- operating ------------------------------------------------------------------------------


def test_the_azure_sdk_http_log_is_quiet_at_info_by_default():
    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name
        assert logger.isEnabledFor(logging.WARNING), name


@pytest.mark.parametrize("store", ["orm", "cosmos"])
def test_the_start_up_banner_names_the_record_store(store, request, settings):
    from io import StringIO

    from django.core.management import call_command

    if store == "cosmos":
        cosmos = request.getfixturevalue("cosmos_outage_store")
        expected = f"cosmos (127.0.0.1:{cosmos.endpoint.rsplit(':', 1)[1].strip('/')}"
    else:
        expected = "orm (the "
    out = StringIO()
    call_command("seed_demo", "--no-sandbox", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if "Record store" in x)
    assert expected in line, line
    assert COSMOS_TEST_KEY not in out.getvalue()
