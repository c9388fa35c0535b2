"""A deactivated tenant stops everything: no scheduled or manual sync is claimed, no push,
no webhook processing, no push rule — and a disabled integration is never claimed either.
Nothing is dropped: reactivated, the tenant's work goes on where it stopped. (The token
refresh side is in tests/credentials/test_refresh.py.)"""

from __future__ import annotations

import pytest

from castiel.tenancy.models import Tenant
from integrations.models import Integration
from syncing.inbound import scheduler
from syncing.models import OutboundChange, PushRule, SyncTask
from syncing.outbound import dispatch, local_changes, push
from tests.factories import IntegrationFactory
from tests.syncing.inbound.test_scheduler import bulk_tasks
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def set_active(tenant, active: bool) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(is_active=active)


def test_no_sync_of_a_deactivated_tenant_is_claimed_scheduled_or_manual(
    enqueued, tenant, other_tenant
):
    [theirs] = bulk_tasks(tenant, 1)
    [ours] = bulk_tasks(other_tenant, 1)
    set_active(tenant, False)
    assert theirs.id not in set(scheduler.due().values_list("id", flat=True))
    assert scheduler.tick() == 1
    assert scheduler.run_now(theirs) is False  # "run now" claims too, and is refused
    assert scheduler.claim([theirs.id]) == []
    assert list(SyncTask.objects.filter(status="queued").values_list("id", flat=True)) == [ours.id]
    set_active(tenant, True)
    assert scheduler.tick() == 1  # reactivated: its task is claimed again


def test_a_disabled_integrations_task_is_not_claimed_even_by_run_now(enqueued, tenant):
    [task] = bulk_tasks(tenant, 1)
    Integration.objects.filter(pk=task.integration_id).update(enabled=False)
    assert scheduler.run_now(task) is False
    assert scheduler.tick() == 0
    assert not SyncTask.objects.filter(status="queued").exists()


def changes_for(tenant, n=2):
    integration = IntegrationFactory(tenant=tenant)
    return [
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"n": i}
        ).change
        for i in range(n)
    ]


@pytest.mark.django_db(transaction=True)
def test_no_push_of_a_deactivated_tenant_is_claimed(tenant, other_tenant):
    """Both claims: the fair one (hand-written SQL on PostgreSQL) and the suspects'."""
    theirs = changes_for(tenant)
    ours = changes_for(other_tenant)
    OutboundChange.objects.filter(pk=theirs[1].pk).update(lost_attempts=1)  # a suspect
    set_active(tenant, False)
    assert not dispatch.due().filter(tenant_id=tenant.id).exists()
    _token, ids = dispatch.claim(100)
    assert set(ids) == {c.pk for c in ours}
    _token, suspects = dispatch.claim(100, suspects=True)
    assert suspects == []
    assert set(
        OutboundChange.objects.filter(tenant_id=tenant.id).values_list("status", flat=True)
    ) == {"pending"}
    set_active(tenant, True)
    _token, ids = dispatch.claim(100)
    assert ids == [theirs[0].pk]


def test_webhook_events_of_a_deactivated_tenant_wait_unprocessed(tenant):
    registration = make_registration(tenant)
    event = make_event(registration, status=WebhookEvent.Status.RECEIVED)
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=event.received_at - webhooks_lost_after()
    )
    set_active(tenant, False)
    assert processing.event_process(event_id=event.pk) is None
    assert processing.events_requeue_due() == 0  # the sweeper leaves them alone too
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("received", 0)
    set_active(tenant, True)
    assert processing.events_requeue_due() == 1
    assert processing.event_process(event_id=event.pk) is not None  # claimed and processed


def webhooks_lost_after():
    from datetime import timedelta

    return timedelta(seconds=processing.LOST_AFTER_SECONDS + 5)


class Normalised:
    """A normalised webhook event, as the parsers make them."""

    type = "contacts.updated"
    entity_type = "contacts"
    external_id = "c1"
    deleted = False
    payload = {"email": "ada@example.com", "first_name": "Ada"}


def push_rule(tenant, **fields):
    source = IntegrationFactory(tenant=tenant, name="CRM")
    target = IntegrationFactory(tenant=tenant, name="Helpdesk")
    return PushRule.objects.create(
        tenant=tenant,
        name="CRM → helpdesk",
        source_integration=source,
        source_entity_type="contacts",
        event_types=["contacts.*"],
        target_integration=target,
        target_entity_type="contacts",
        field_mapping={"email": "email", "first_name": "first_name"},
        match_field="email",
        **fields,
    )


def evaluate(rule):
    from syncing.reactions.push_rules import evaluate_rules
    from webhooks.routing import ActionContext

    context = ActionContext(
        tenant_id=str(rule.tenant_id),
        integration_id=str(rule.source_integration_id),
        registration_id="r",
        webhook_event_id="e",
        correlation_id="",
        replay=False,
    )
    return evaluate_rules(Normalised(), context)


def test_push_rules_of_a_deactivated_tenant_or_to_a_disabled_integration_write_nothing(tenant):
    rule = push_rule(tenant)
    set_active(tenant, False)
    result = evaluate(rule)
    assert [r["outcome"] for r in result["rules"]] == ["skipped"]
    assert "deactivated" in result["rules"][0]["reason"]
    set_active(tenant, True)
    Integration.objects.filter(pk=rule.target_integration_id).update(enabled=False)
    result = evaluate(rule)
    assert [r["outcome"] for r in result["rules"]] == ["skipped"]
    assert "disabled" in result["rules"][0]["reason"]
    assert not OutboundChange.objects.exists()
    Integration.objects.filter(pk=rule.target_integration_id).update(enabled=True)
    assert [r["outcome"] for r in evaluate(rule)["rules"]] == ["created"]
    assert OutboundChange.objects.filter(origin="rule").count() == 1


def test_the_admin_says_what_deactivation_stops(admin_client, tenant):
    url = f"/admin/tenancy/tenant/{tenant.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "no sync is claimed" in page and "no token is refreshed" in page
    response = admin_client.post(
        url,
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    assert "is deactivated" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.is_active is False


def test_work_claimed_just_before_the_deactivation_is_not_started(
    enqueued, pushes, tenant, other_tenant
):
    """The worker's take is a claim too: a wake-up that arrives after the tenant was
    deactivated runs nothing and pushes nothing; reactivated, the work goes on."""
    from syncing.inbound.worker import run_claimed
    from syncing.models import SyncRun

    [theirs] = bulk_tasks(tenant, 1)
    changes_for(tenant, 1)
    assert scheduler.claim([theirs.id])
    dispatch.dispatch()
    set_active(tenant, False)

    for _path, args, _kind in enqueued.drain():
        assert run_claimed(*args) == 0
    assert not SyncRun.objects.filter(task=theirs).exists()
    for token in pushes.drain():
        assert push.push_batch(token) == {}
    assert not OutboundChange.objects.filter(attempts__gt=0).exists()
