"""Push rules: a webhook event about one integration's record writes a record of another
through the outbox, and the push lands at the target provider (the sandbox, over HTTP)."""

from __future__ import annotations

import json

import pytest

from sandbox.models import SandboxObject
from syncing.models import OutboundChange, PushRule, SyncRun
from tests.syncing.helpers import make_integration, records_of, run_once, sandbox_integration
from tests.syncing.outbound_support import SANDBOX_PUSH, push_all
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded]

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# How the sandbox's own webhooks are read (see sandbox/services.emit).
SANDBOX_PARSER = {
    "type": "type",
    "entity_type": "=contacts",
    "external_id": "data.id",
    "payload": "data",
    "occurred_at": "created_at",
    "event_id": "id",
    "complete": True,
}


def crm_source(tenant, base_url="http://127.0.0.1:9/"):
    """A source integration and its webhook registration (no sync task needed for rules)."""
    source = make_integration(tenant, base_url, name="CRM")
    registration = make_registration(
        tenant,
        scheme="standard_webhooks",
        secret=STANDARD_SECRET,
        integration=source,
        parser="generic",
        parser_config=SANDBOX_PARSER,
    )
    return source, registration


def rule(tenant, source, target, **fields):
    defaults = {
        "tenant": tenant,
        "name": "CRM contacts → helpdesk",
        "source_integration": source,
        "source_entity_type": "contacts",
        "event_types": ["contacts.*"],
        "target_integration": target,
        "target_entity_type": "contacts",
        "field_mapping": {
            "email": {"path": "email", "transform": "email"},
            "first_name": "first_name",
            "company": "company",
        },
        "match_field": "email",
    }
    defaults.update(fields)
    return PushRule.objects.create(**defaults)


def deliver(registration, event_type: str, data: dict, n: int) -> WebhookEvent:
    body = {"id": f"evt_{n}", "type": event_type, "created_at": "2025-01-31T09:00:00Z"}
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        body=json.dumps({**body, "data": data}).encode(),
    )
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


def rule_results(event) -> list[dict]:
    found = [a for a in event.actions if a.get("action") == "push.evaluate_rules"]
    assert found, event.actions
    return found[-1]["result"]["rules"]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_event_creates_then_updates_the_target_record_and_both_are_pushed(
    tenant, sandbox, pushes
):
    account = sandbox.account("helpdesk")
    target = sandbox_integration(tenant, sandbox.url, account.slug, name="Helpdesk", **SANDBOX_PUSH)
    source, registration = crm_source(tenant)
    the_rule = rule(tenant, source, target)
    ada = {"id": "c-1", "first_name": "Ada", "email": "Ada@Example.com ", "company": "Acme"}

    event = deliver(registration, "contacts.created", ada, 1)
    assert event.status == WebhookEvent.Status.PROCESSED, event.last_error
    (result,) = rule_results(event)
    assert result["outcome"] == "created"
    change = OutboundChange.objects.get(pk=result["change"])
    assert (change.origin, change.operation, change.actor) == (
        "rule",
        "create",
        "rule:" + the_rule.name,
    )
    assert push_all(pushes) == {"succeeded": 1}
    landed = SandboxObject.objects.get(account=account)
    assert landed.data == {"email": "ada@example.com", "first_name": "Ada", "company": "Acme"}

    # A later change of the same contact updates that record (matched on the email, any case).
    renamed = {**ada, "email": "ADA@example.com", "company": "Analytical Engines"}
    event = deliver(registration, "contacts.updated", renamed, 2)
    (result,) = rule_results(event)
    assert result["outcome"] == "updated"
    update = OutboundChange.objects.get(pk=result["change"])
    assert (update.operation, update.fields) == ("update", ["company"])
    assert push_all(pushes) == {"succeeded": 1}
    landed.refresh_from_db()
    assert landed.data["company"] == "Analytical Engines"
    assert SandboxObject.objects.filter(account=account).count() == 1, "matched, not duplicated"

    # A replay of the same event changes nothing and pushes nothing (idempotent).
    processing.event_replay(event=event)
    processing.event_process(event_id=event.pk)
    event.refresh_from_db()
    assert rule_results(event)[0]["outcome"] == "unchanged"
    assert push_all(pushes) == {}
    the_rule.refresh_from_db()
    assert the_rule.last_outcome == "unchanged" and the_rule.last_fired_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_rule_updates_a_record_the_target_sync_pulled(tenant, sandbox, pushes, enqueued):
    account = sandbox.account("helpdesk")
    sandbox.seed(account, 3)
    target = sandbox_integration(tenant, sandbox.url, account.slug, name="Helpdesk", **SANDBOX_PUSH)
    task = target.sync_tasks.create(tenant=tenant, entity_type="contacts")
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    existing = SandboxObject.objects.filter(account=account).order_by("id").first()
    source, registration = crm_source(tenant)
    rule(tenant, source, target, field_mapping={"email": "email", "phone": "phone"})

    event = deliver(
        registration,
        "contacts.updated",
        {"id": "c-9", "email": existing.data["email"].upper(), "phone": "+1 555 0100"},
        1,
    )
    (result,) = rule_results(event)
    assert result["outcome"] == "updated"
    assert push_all(pushes) == {"succeeded": 1}
    existing.refresh_from_db()
    assert existing.data["phone"] == "+1 555 0100"
    assert SandboxObject.objects.filter(account=account).count() == 3
    # The email went out as the local record holds it after the merge (the rule's value).
    assert records_of(task)[str(existing.pk)]["phone"] == "+1 555 0100"


@pytest.mark.django_db
def test_without_rules_the_event_is_processed_not_failed(tenant):
    _source, registration = crm_source(tenant)
    event = deliver(registration, "contacts.created", {"id": "c-1", "email": "a@b.example"}, 1)
    assert event.status == WebhookEvent.Status.PROCESSED, event.last_error
    outcome = [a for a in event.actions if a.get("action") == "push.evaluate_rules"]
    assert outcome[0]["result"] == {"outcome": "no_rules"}


@pytest.mark.django_db
def test_rules_filter_by_event_type_and_never_delete(tenant):
    source, registration = crm_source(tenant)
    target = make_integration(tenant, "http://127.0.0.1:9/", name="Helpdesk")
    rule(tenant, source, target, event_types=["contacts.created"])

    event = deliver(registration, "contacts.updated", {"id": "c-1", "email": "a@b.example"}, 1)
    assert [a["result"] for a in event.actions if a["action"] == "push.evaluate_rules"] == [
        {"outcome": "no_rules"}
    ]
    rule(tenant, source, target, name="all", event_types=[])
    event = deliver(registration, "contacts.deleted", {"id": "c-1", "email": "a@b.example"}, 2)
    assert rule_results(event)[0]["outcome"] == "skipped"
    assert not OutboundChange.objects.exists()


@pytest.mark.django_db
def test_no_match_without_create_missing_and_ambiguous_keys_write_nothing(tenant):
    from syncing.outbound import local_changes

    source, registration = crm_source(tenant)
    target = make_integration(tenant, "http://127.0.0.1:9/", name="Helpdesk")
    the_rule = rule(tenant, source, target, create_missing=False)
    event = deliver(registration, "contacts.created", {"id": "c-1", "email": "a@b.example"}, 1)
    assert rule_results(event)[0]["outcome"] == "no_match"
    assert not OutboundChange.objects.exists()

    for _ in range(2):
        local_changes.record_create(
            integration=target, entity_type="contacts", data={"email": "a@b.example"}
        )
    before = OutboundChange.objects.count()
    event = deliver(registration, "contacts.updated", {"id": "c-1", "email": "a@b.example"}, 2)
    assert event.status == WebhookEvent.Status.FAILED
    assert "ambiguous" in event.last_error and the_rule.name in event.last_error
    assert OutboundChange.objects.count() == before


@pytest.mark.django_db
def test_a_payload_without_the_match_key_fails_the_event_with_the_reason(tenant):
    source, registration = crm_source(tenant)
    target = make_integration(tenant, "http://127.0.0.1:9/", name="Helpdesk")
    rule(tenant, source, target)
    event = deliver(registration, "contacts.created", {"id": "c-1", "first_name": "Nobody"}, 1)
    assert event.status == WebhookEvent.Status.FAILED
    assert "has no 'email'" in event.last_error
    assert not OutboundChange.objects.exists()


@pytest.mark.django_db
def test_another_tenants_rules_never_fire(tenant, other_tenant):
    _source, registration = crm_source(tenant)
    their_source = make_integration(other_tenant, "http://127.0.0.1:9/", name="CRM")
    their_target = make_integration(other_tenant, "http://127.0.0.1:9/", name="Helpdesk")
    rule(other_tenant, their_source, their_target)
    event = deliver(registration, "contacts.created", {"id": "c-1", "email": "a@b.example"}, 1)
    outcome = [a for a in event.actions if a.get("action") == "push.evaluate_rules"]
    assert outcome[0]["result"] == {"outcome": "no_rules"}
    assert not OutboundChange.objects.exists()


@pytest.mark.django_db
def test_rules_are_listed_in_the_admin(admin_client, tenant):
    source, _registration = crm_source(tenant)
    target = make_integration(tenant, "http://127.0.0.1:9/", name="Helpdesk")
    the_rule = rule(tenant, source, target)
    page = admin_client.get("/admin/syncing/pushrule/")
    assert page.status_code == 200 and the_rule.name in page.content.decode()
    assert admin_client.get(f"/admin/syncing/pushrule/{the_rule.pk}/change/").status_code == 200
