"""Writable records, the outbox and dead letters through the tenant API and the admin; the
dead-letter depth metric; no secrets anywhere a dead letter is shown."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth.models import User

from syncing.models import DeadLetter, OutboundChange, Record
from tests.factories import IntegrationFactory
from tests.syncing.factories import make_dead_letter, make_record
from tests.syncing.outbound_support import push_all

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk_live_do_not_show_me"


class BearerAuth(requests.auth.AuthBase):
    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {SECRET}"
        return request


@pytest.fixture
def provider(http_server, monkeypatch):
    """A provider that creates fine, refuses updates with 422 and echoes a secret in its error,
    reached with a credential in the Authorization header."""
    monkeypatch.setattr("credentials.clients.auth_for", lambda integration: BearerAuth())

    @http_server.route("POST", "/contacts")
    def create(request):
        return 201, {}, {**request.json(), "id": "c1"}

    @http_server.route("PATCH", "/contacts/c1")
    def update(request):
        body = {"error": "invalid phone", "api_key": SECRET, "echo": {"token": SECRET}}
        return 422, {"X-Request-Id": "req-9"}, body

    return http_server


@pytest.fixture
def admin_client(client):
    User.objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    assert client.login(username="ops", password="correct horse battery")
    return client


def test_records_are_writable_and_every_write_queues_a_push(api, tenant, provider, pushes):
    integration = IntegrationFactory(tenant=tenant, config={"base_url": provider.url})
    response = api.post(
        "/api/v1/records/",
        {"integration": str(integration.pk), "entity_type": "contacts", "data": {"name": "A"}},
        format="json",
        HTTP_X_CORRELATION_ID="corr-api-1",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["external_id"].startswith("castiel-pending:") and body["data"] == {"name": "A"}
    change = OutboundChange.objects.get(pk=body["outbound_change"])
    assert (change.operation, change.origin, change.correlation_id) == (
        "create",
        "api",
        "corr-api-1",
    )
    assert push_all(pushes) == {"succeeded": 1}
    url = f"/api/v1/records/{body['id']}/"
    assert api.get(url).json()["external_id"] == "c1"

    patched = api.patch(url, {"data": {"phone": "x"}}, format="json")
    # After the create, the local copy mirrors the provider's (its id included).
    assert patched.json()["data"] == {"id": "c1", "name": "A", "phone": "x"}
    assert OutboundChange.objects.get(pk=patched.json()["outbound_change"]).fields == ["phone"]
    stale = api.put(url, {"data": {"name": "B"}, "version": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "version_mismatch"
    unchanged = api.patch(url, {"data": {"phone": "x"}}, format="json")
    assert unchanged.json()["outbound_change"] is None

    changes = api.get("/api/v1/outbound-changes/", {"record_id": body["id"]}).json()["results"]
    assert [c["operation"] for c in changes] == ["update", "create"]
    assert changes[1]["status"] == "succeeded" and changes[1]["remote_id"] == "c1"
    assert changes[1]["idempotency_key"] == changes[1]["id"]

    assert api.delete(url).status_code == 204
    assert Record.objects.get(pk=body["id"]).deleted_at is not None
    assert api.patch(url, {"data": {"a": 1}}, format="json").json()["code"] == "record_deleted"


def test_a_record_cannot_be_created_on_another_tenants_integration(api, other_tenant):
    theirs = IntegrationFactory(tenant=other_tenant)
    response = api.post(
        "/api/v1/records/",
        {"integration": str(theirs.pk), "entity_type": "contacts", "data": {}},
        format="json",
    )
    assert response.status_code == 400 and "integration" in response.json()["details"]
    assert not Record.objects.exists()


def test_dead_letters_can_be_inspected_without_secrets_then_replayed_or_discarded(
    api, tenant, provider, pushes, client
):
    integration = IntegrationFactory(tenant=tenant, config={"base_url": provider.url})
    record_id = api.post(
        "/api/v1/records/",
        {"integration": str(integration.pk), "entity_type": "contacts", "data": {"n": 1}},
        format="json",
    ).json()["id"]
    push_all(pushes)
    api.patch(
        f"/api/v1/records/{record_id}/",
        {"data": {"phone": "bad", "password": "hunter2"}},
        format="json",
    )
    assert push_all(pushes) == {"dead": 1}

    listed = api.get("/api/v1/dead-letters/", {"status": "open"}).json()["results"]
    assert len(listed) == 1
    letter = api.get(f"/api/v1/dead-letters/{listed[0]['id']}/")
    detail = letter.json()
    assert (detail["error_code"], detail["response_status"], detail["attempts"]) == (
        "http_422",
        422,
        1,
    )
    assert detail["request"]["method"] == "PATCH" and detail["request"]["url"].endswith("/c1")
    assert "authorization" not in detail["request"]["headers"]
    assert '"phone": "bad"' in detail["request"]["body"]
    assert "hunter2" not in letter.content.decode()
    assert "invalid phone" in detail["response_body"]
    assert detail["response_headers"]["x-request-id"] == "req-9"
    assert SECRET not in letter.content.decode()
    assert "[redacted]" in detail["response_body"]

    metrics = client.get("/metrics").content.decode()
    assert "castiel_outbound_dead_letters 1.0" in metrics
    assert 'castiel_outbound_changes{status="dead"} 1.0' in metrics

    replayed = api.post(f"/api/v1/dead-letters/{detail['id']}/replay/")
    assert replayed.status_code == 200 and replayed.json()["status"] == "replayed"
    again = api.post(f"/api/v1/dead-letters/{detail['id']}/replay/")
    assert again.status_code == 409 and again.json()["code"] == "dead_letter_resolved"
    assert push_all(pushes) == {"dead": 1}, "the cause is not fixed: it dies again"
    second = DeadLetter.objects.get(status="open")
    assert second.change_id == OutboundChange.objects.get(operation="update").pk

    discarded = api.post(f"/api/v1/dead-letters/{second.pk}/discard/")
    assert discarded.json()["status"] == "discarded"
    assert OutboundChange.objects.get(operation="update").status == "discarded"
    assert "castiel_outbound_dead_letters 0.0" in client.get("/metrics").content.decode()


class QueryKeyAuth(requests.auth.AuthBase):
    """An API key in the query string, under a name no redaction rule would recognise."""

    def __call__(self, request):
        request.prepare_url(request.url, {"appid": SECRET})
        return request


def test_a_dead_letter_keeps_no_query_string_credential(
    api, tenant, http_server, pushes, monkeypatch
):
    monkeypatch.setattr("credentials.clients.auth_for", lambda integration: QueryKeyAuth())

    @http_server.route("POST", "/contacts")
    def refuse(request):
        assert request.query["appid"] == [SECRET]  # the key did reach the provider
        return 422, {}, {"error": "invalid"}

    integration = IntegrationFactory(tenant=tenant, config={"base_url": http_server.url})
    api.post(
        "/api/v1/records/",
        {"integration": str(integration.pk), "entity_type": "contacts", "data": {"n": 1}},
        format="json",
    )
    assert push_all(pushes) == {"dead": 1}
    letter = DeadLetter.objects.get()
    assert letter.request["url"].endswith("/contacts")
    answer = api.get(f"/api/v1/dead-letters/{letter.pk}/")
    assert answer.status_code == 200 and SECRET not in answer.content.decode()


def test_bulk_replay_and_discard_touch_only_the_callers_dead_letters(
    api, tenant, other_tenant, pushes
):
    mine = [make_dead_letter(tenant) for _ in range(2)]
    theirs = make_dead_letter(other_tenant)
    response = api.post(
        "/api/v1/dead-letters/replay/",
        {"ids": [str(mine[0].pk), str(theirs.pk)]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "done": [str(mine[0].pk)],
        "skipped": {str(theirs.pk): "no such dead letter"},
    }
    theirs.refresh_from_db()
    assert theirs.status == "open" and theirs.change.status == "dead"
    mine[0].change.refresh_from_db()
    assert mine[0].change.status == "pending" and mine[0].change.key_generation == 1
    response = api.post(
        "/api/v1/dead-letters/discard/",
        {"ids": [str(d.pk) for d in mine]},
        format="json",
    )
    assert response.json()["done"] == [str(mine[1].pk)]
    assert str(mine[0].pk) in response.json()["skipped"], "already replayed"


def test_admin_edits_go_through_the_outbox_and_dead_letters_have_actions(
    admin_client, tenant, pushes
):
    record = make_record(tenant)
    url = f"/admin/syncing/record/{record.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    response = admin_client.post(url, {"data": '{"id": "1", "name": "from the admin"}'})
    assert response.status_code == 302, response.content.decode()[:2000]
    change = OutboundChange.objects.get(record_id=record.pk)
    assert (change.origin, change.fields, change.actor) == ("admin", ["name"], "admin:ops")
    assert Record.objects.get(pk=record.pk).data["name"] == "from the admin"

    added = admin_client.post(
        "/admin/syncing/record/add/",
        {
            "integration": str(record.integration_id),
            "entity_type": "contacts",
            "data": '{"name": "new"}',
        },
    )
    assert added.status_code == 302
    assert OutboundChange.objects.filter(operation="create", origin="admin").count() == 1

    letter = make_dead_letter(tenant)
    assert admin_client.get("/admin/syncing/deadletter/").status_code == 200
    assert admin_client.get(f"/admin/syncing/deadletter/{letter.pk}/change/").status_code == 200
    admin_client.post(
        "/admin/syncing/deadletter/",
        {"action": "discard", "_selected_action": [str(letter.pk)]},
    )
    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by) == ("discarded", "admin:ops")
    assert admin_client.get("/admin/syncing/outboundchange/").status_code == 200
