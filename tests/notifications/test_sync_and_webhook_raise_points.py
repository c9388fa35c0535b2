"""Events raised by the sync engine and the webhook receiver, where the fact happens: a task
failing and recovering, a run over its budget, conflicts waiting, dead letters, an outbound
backlog, signature rejections spiking, webhook processing failing and recovering."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from castiel.events import Kind
from castiel.http.errors import HttpError
from notifications.models import Incident
from syncing.inbound.endings import BUDGET_REACHED, Endings
from syncing.inbound.errors import Deferred
from syncing.models import Conflict, OutboundChange, SyncRun, SyncTask
from syncing.outbound import deadletters, dispatch
from syncing.services import conflict_resolve
from tests.syncing.factories import make_outbound_change, make_sync_task
from tests.syncing.inbound.test_conflicts import BASE, LOCAL, REMOTE, _edit_locally
from tests.syncing.pipeline_support import apply_page, task_with
from tests.webhooks.conftest import recorded_actions  # noqa: F401  (fixture)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def live(kind):
    return Incident.objects.filter(kind=str(kind), state__in=Incident.LIVE)


def resolved(kind):
    return Incident.objects.filter(kind=str(kind)).exclude(state__in=Incident.LIVE)


def ending(task: SyncTask) -> Endings:
    run = SyncRun.objects.create(tenant=task.tenant, task=task, mode=task.mode)
    return Endings(task, run, "token", "generic_rest", time.monotonic())


def test_a_task_failing_past_the_threshold_opens_one_incident_and_a_success_resolves_it(
    tenant, committed, settings
):
    settings.CASTIEL_NOTIFY_SYNC_FAILURES = 3
    task = make_sync_task(tenant)
    for failures in range(3):
        task.consecutive_failures = failures
        committed(lambda: ending(task).fail("http_500", "the provider answered 500"))
        assert live(Kind.SYNC_FAILING).exists() == (failures == 2)
    (incident,) = live(Kind.SYNC_FAILING)
    assert (incident.subject_type, incident.subject_id) == ("synctask", str(task.pk))
    assert incident.details == {"consecutive_failures": 3}
    task.consecutive_failures = 3
    committed(lambda: ending(task).succeed())
    assert not live(Kind.SYNC_FAILING).exists() and resolved(Kind.SYNC_FAILING).count() == 1


def test_a_healthy_run_raises_nothing(tenant, committed):
    task = make_sync_task(tenant)
    committed(lambda: ending(task).succeed())
    assert not Incident.objects.exists()


def test_a_run_stopped_by_its_budget_opens_an_incident_until_one_fits_again(tenant, committed):
    task = make_sync_task(tenant)
    committed(lambda: ending(task).defer(Deferred(0, BUDGET_REACHED)))
    assert live(Kind.SYNC_OVER_BUDGET).count() == 1
    committed(lambda: ending(task).defer(Deferred(30, "rate limiter: wait")))  # not the budget
    assert Incident.objects.get(kind=str(Kind.SYNC_OVER_BUDGET)).occurrences == 1
    task.status_reason = BUDGET_REACHED  # what the deferred run left on the task
    committed(lambda: ending(task).succeed())
    assert not live(Kind.SYNC_OVER_BUDGET).exists()


def test_conflicts_for_a_human_open_an_incident_and_the_last_decision_resolves_it(
    tenant, committed
):
    task = task_with(tenant, conflict_strategy="manual")
    apply_page(task, [{"id": "1", **BASE, "updated_at": "2024-05-01T11:00:00Z"}])
    _edit_locally(task, "1", {"id": "1", **LOCAL})
    committed(
        lambda: apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
    )
    (incident,) = live(Kind.CONFLICTS_WAITING)
    assert incident.subject_id == str(task.integration_id) and incident.details == {"open": 1}
    committed(
        lambda: conflict_resolve(conflict=Conflict.objects.get(), resolution="remote", by="ops")
    )
    assert not live(Kind.CONFLICTS_WAITING).exists()


def test_conflicts_settled_by_the_strategy_raise_nothing(tenant, committed):
    task = task_with(tenant, conflict_strategy="field_merge")
    apply_page(task, [{"id": "1", **BASE, "updated_at": "2024-05-01T11:00:00Z"}])
    _edit_locally(task, "1", {"id": "1", **LOCAL})
    committed(
        lambda: apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
    )
    assert not live(Kind.CONFLICTS_WAITING).exists()


def test_dead_letters_fold_into_one_incident_per_integration_until_the_last_is_handled(
    tenant, committed
):
    changes = [make_outbound_change(tenant) for _ in range(2)]
    for change in changes[1:]:
        change.integration = changes[0].integration
        change.save(update_fields=["integration"])
    error = HttpError("HTTP 422 from the provider", status=422, retryable=False)
    letters = [
        committed(lambda c=change: deadletters.dead_letter_create(change=c, exc=error))
        for change in changes
    ]
    OutboundChange.objects.update(status=OutboundChange.Status.DEAD)
    (incident,) = live(Kind.DEAD_LETTER_CREATED)
    assert incident.occurrences == 2
    committed(lambda: deadletters.dead_letter_discard(dead_letter=letters[0], by="ops"))
    assert live(Kind.DEAD_LETTER_CREATED).exists(), "one dead letter is still open"
    committed(lambda: deadletters.dead_letter_discard(dead_letter=letters[1], by="ops"))
    assert not live(Kind.DEAD_LETTER_CREATED).exists()


def test_an_old_outbound_backlog_opens_an_incident_and_draining_it_resolves_it(
    tenant, committed, settings
):
    settings.CASTIEL_NOTIFY_BACKLOG_SECONDS = 600
    change = make_outbound_change(tenant)
    committed(dispatch.notify_backlog)
    assert not live(Kind.OUTBOUND_BACKLOG).exists(), "a fresh change is no backlog"
    OutboundChange.objects.filter(pk=change.pk).update(
        created_at=timezone.now() - timedelta(minutes=30)
    )
    committed(dispatch.notify_backlog)
    (incident,) = live(Kind.OUTBOUND_BACKLOG)
    assert incident.details["age_seconds"] >= 1800
    OutboundChange.objects.filter(pk=change.pk).update(status=OutboundChange.Status.SUCCEEDED)
    committed(dispatch.notify_backlog)
    assert not live(Kind.OUTBOUND_BACKLOG).exists()


# -- webhooks --------------------------------------------------------------------------------
def test_signature_rejections_past_the_spike_threshold_open_one_incident(
    client, tenant, committed, settings
):
    import json
    import uuid

    from tests.webhooks.factories import make_registration
    from tests.webhooks.support import github_headers

    settings.CASTIEL_NOTIFY_SIGNATURE_SPIKE = 3
    registration = make_registration(tenant, scheme="github", secret="the-right-secret")
    body = json.dumps({"action": "opened", "issue": {"id": 7}}).encode()

    def deliver(secret):
        headers = github_headers(secret, body, event="issues", delivery=str(uuid.uuid4()))
        return client.post(
            f"/webhooks/{registration.pk}/", data=body, content_type="application/json", **headers
        )

    assert committed(lambda: deliver("the-right-secret")).status_code == 200
    for n in range(3):
        assert committed(lambda: deliver("a-wrong-secret")).status_code == 401
        assert live(Kind.WEBHOOK_SIGNATURES_REJECTED).exists() == (n == 2)
    (incident,) = live(Kind.WEBHOOK_SIGNATURES_REJECTED)
    assert incident.subject_id == str(registration.pk) and incident.occurrences == 3


@pytest.mark.usefixtures("recorded_actions")
def test_webhook_processing_failing_opens_an_incident_and_the_next_success_resolves_it(
    tenant, committed
):
    import json

    from tests.webhooks.factories import make_event, make_registration
    from webhooks import processing, routing
    from webhooks.models import WebhookEvent

    registration = make_registration(tenant, scheme="github")

    def issue_event():
        body = {"action": "opened", "issue": {"id": 7, "title": "x"}}
        return make_event(
            registration,
            status=WebhookEvent.Status.RECEIVED,
            headers={"X-Github-Event": "issues", "X-Github-Delivery": "d-1"},
            body=json.dumps(body).encode(),
        )

    def broken(event, context):
        raise routing.PermanentActionError("the mapping is missing")

    previous = routing.registered_actions()[routing.UPSERT_RECORD]
    routing.register_action(routing.UPSERT_RECORD, broken)
    try:
        failed = issue_event()
        assert committed(lambda: processing.event_process(event_id=failed.pk)) == "failed"
    finally:
        routing.register_action(routing.UPSERT_RECORD, previous)
    (incident,) = live(Kind.WEBHOOK_PROCESSING_FAILING)
    assert "the mapping is missing" in incident.message
    ok = issue_event()
    assert committed(lambda: processing.event_process(event_id=ok.pk)) == "processed"
    assert not live(Kind.WEBHOOK_PROCESSING_FAILING).exists()
