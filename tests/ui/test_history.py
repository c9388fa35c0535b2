"""Per-record change history: every path that changes a record says which run, webhook, API
call, operator or conflict resolution changed which fields."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import Conflict, OutboundChange, RecordChange, SyncRun
from syncing.outbound import local_changes
from syncing.records import history
from syncing.services import conflict_resolve
from tests.syncing.helpers import make_integration, make_task, run_once, sandbox_integration
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing, routing
from webhooks.models import WebhookEvent


def rows(**filters):
    return list(RecordChange.objects.filter(**filters).order_by("id"))


@pytest.mark.django_db(transaction=True)
def test_a_pull_names_its_run_and_the_fields_it_changed(tenant, sandbox, enqueued):
    account = sandbox.account()
    sandbox.seed(account, 5)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
    first = run_once(task, enqueued)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_summary
    created = rows(source="run", source_id=str(first.pk))
    assert [c.action for c in created] == ["created"] * 5

    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    sandbox_services.object_update(obj=objs[0], data={"email": "new@example.com"})
    sandbox_services.object_delete(obj=objs[1])
    second = run_once(task, enqueued)
    assert (second.updated, second.deleted) == (1, 1)
    changed = {c.external_id: c for c in rows(source="run", source_id=str(second.pk))}
    assert changed[str(objs[0].pk)].action == "updated"
    # The sandbox moves updated_at with every write: both fields really changed.
    assert changed[str(objs[0].pk)].fields == ["email", "updated_at"]
    assert changed[str(objs[1].pk)].action == "deleted"
    assert len(changed) == 2, "unchanged records leave no history"

    record_id = changed[str(objs[0].pk)].record_id
    assert [c.source_id for c in history.for_record(record_id)] == [
        str(second.pk),
        str(first.pk),
    ]


@pytest.mark.embedded
@pytest.mark.django_db
def test_local_edits_name_their_origin_actor_and_outbound_change(tenant):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada", "email": "ada@x.com"}])
    record = stored(task)["1"]
    assert rows(record_id=record.id)[0].source == "service"  # a pipeline without a run
    # The same page again changes nothing a user can see: no history row.
    apply_page(task, [{"id": "1", "name": "Ada", "email": "ada@x.com"}])
    assert len(rows(record_id=record.id)) == 1

    edit = local_changes.record_update(
        tenant_id=tenant.id,
        record_id=record.id,
        data={"name": "Ada L."},
        origin=OutboundChange.Origin.ADMIN,
        actor="admin:ops",
    )
    gone = local_changes.record_delete(
        tenant_id=tenant.id, record_id=record.id, origin=OutboundChange.Origin.API
    )
    update, delete = rows(record_id=record.id)[1:]
    assert (update.action, update.fields, update.source, update.actor) == (
        "updated",
        ["name"],
        "admin",
        "admin:ops",
    )
    assert update.source_id == str(edit.change.pk)
    assert (delete.action, delete.source, delete.source_id) == (
        "deleted",
        "api",
        str(gone.change.pk),
    )


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_a_push_written_back_in_the_providers_spelling_names_its_change(
    tenant, http_server, pushes, operator
):
    from tests.factories import IntegrationFactory
    from tests.syncing.outbound_support import push_all

    def normalised(request, external_id):  # the provider lower-cases e-mail addresses
        body = {**request.json(), "id": external_id}
        body["email"] = body.get("email", "").lower()
        return body

    http_server.route("POST", "/contacts")(lambda r: (201, {}, normalised(r, "c1")))
    http_server.route("PATCH", "/contacts/c1")(lambda r: (200, {}, normalised(r, "c1")))
    integration = IntegrationFactory(tenant=tenant, config={"base_url": http_server.url})
    made = local_changes.record_create(
        integration=integration, entity_type="contacts", data={"email": "Ada@X.com"}
    )
    assert push_all(pushes) == {"succeeded": 1}
    edit = local_changes.record_update(
        tenant_id=tenant.id, record_id=made.record.id, data={"email": "ADA@Y.com"}
    )
    assert push_all(pushes) == {"succeeded": 1}
    local_changes.record_update(
        tenant_id=tenant.id, record_id=made.record.id, data={"email": "ada@z.com"}
    )
    assert push_all(pushes) == {"succeeded": 1}  # already the provider's spelling

    history_rows = rows(record_id=made.record.id)
    assert [(r.action, r.source) for r in history_rows] == [
        ("created", "service"),
        ("updated", "push"),  # the create came back with its id, lower-cased
        ("updated", "service"),
        ("updated", "push"),  # the edit came back lower-cased
        ("updated", "service"),  # no write-back row: the provider kept it as it was
    ]
    assert history_rows[1].fields == ["email", "id"]
    assert history_rows[1].source_id == str(made.change.pk)
    assert (history_rows[3].fields, history_rows[3].source_id) == (["email"], str(edit.change.pk))
    page = operator.get(f"/admin/syncing/record/{made.record.id}/change/").content.decode()
    assert "Push write-back" in page
    assert f"/admin/syncing/outboundchange/{edit.change.pk}/change/" in page


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_resolved_conflict_is_the_source_of_its_change(tenant):
    task = task_with(tenant, conflict_strategy="manual")
    apply_page(task, [{"id": "1", "name": "Ada", "updated_at": "2024-05-01T11:00:00Z"}])
    record = stored(task)["1"]
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"name": "Local"})
    apply_page(task, [{"id": "1", "name": "Remote", "updated_at": "2024-05-01T12:00:00Z"}])
    conflict = Conflict.objects.get()
    conflict_resolve(conflict=conflict, resolution="remote", by="admin:ops")
    last = rows(record_id=record.id)[-1]
    assert (last.source, last.source_id, last.actor) == ("conflict", str(conflict.pk), "admin:ops")
    assert last.fields == ["name", "updated_at"]


@pytest.mark.embedded
@pytest.mark.django_db
def test_webhook_follow_ups_name_the_event(tenant, monkeypatch):
    monkeypatch.setitem(routing._actions, routing.EVALUATE_RULES, lambda event, context: None)
    integration = make_integration(tenant, "http://127.0.0.1:9/", name="Stripe-like")
    make_task(integration, "customers")
    registration = make_registration(
        tenant, scheme="stripe", secret="whsec_test_secret", integration=integration
    )

    def deliver(event_type, obj, n):
        body = {"id": f"evt_{n}", "type": event_type, "created": 1700000000 + n}
        event = make_event(
            registration,
            status=WebhookEvent.Status.RECEIVED,
            body=json.dumps({**body, "data": {"object": obj}}).encode(),
        )
        processing.event_process(event_id=event.pk)
        return event

    created = deliver("customer.created", {"id": "cus_1", "object": "customer", "name": "A"}, 1)
    deleted = deliver("customer.deleted", {"id": "cus_1", "object": "customer", "deleted": True}, 2)
    assert [(c.action, c.source, c.source_id) for c in rows(external_id="cus_1")] == [
        ("created", "webhook", str(created.pk)),
        ("deleted", "webhook", str(deleted.pk)),
    ]


@pytest.mark.embedded
@pytest.mark.django_db
def test_old_history_is_pruned(tenant, settings):
    settings.CASTIEL_RECORD_HISTORY_RETENTION_DAYS = 30
    task = task_with(tenant)
    apply_page(task, [{"id": str(n), "name": "x"} for n in range(3)])
    RecordChange.objects.filter(external_id__in=["0", "1"]).update(
        at=timezone.now() - timedelta(days=31)
    )
    assert history.prune() == 2
    assert [c.external_id for c in RecordChange.objects.all()] == ["2"]
