"""Tenant application events (sync.completed, sync.failed, records.changed,
credential.reauth_required, webhook.received) delivered to a tenant's signed webhook: what a
real sync run sends and the feed cursor it carries, a ten-minute receiver outage, tenant
isolation, the opt-in, and the API — every event verified with the ``standardwebhooks``
package, as a tenant's application would."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from castiel.events import Kind, Subject, emit
from notifications import delivery, services
from notifications.models import Delivery, EventSubscription, Incident
from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.inbound.endings import Endings
from syncing.models import Record, SyncRun, SyncTask
from syncing.outbound import local_changes
from tests.conftest import client_for
from tests.notifications.support import WEBHOOK_PATH, Answer
from tests.syncing.factories import make_sync_task
from tests.syncing.fixtures import enqueued  # noqa: F401  (fixture)
from tests.syncing.helpers import make_task, run_once, sandbox_integration
from tests.syncing.records.feed_support import settle
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401  (fixture)
from tests.webhooks.conftest import recorded_actions  # noqa: F401  (fixture)

pytestmark = [pytest.mark.embedded]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def subscribe(tenant, url: str, *, name="our app", **fields):
    """A signed-webhook channel of ``tenant`` to ``url`` and an event subscription; returns the
    channel and its signing secret (shown once, as the API shows it)."""
    channel, secret = services.channel_create(
        tenant=tenant, name=name, type="webhook", url=url, rate_limit_per_minute=6000
    )
    integrations = fields.pop("integrations", [])
    subscription = EventSubscription.objects.create(
        tenant=tenant, name=name, channel=channel, **fields
    )
    subscription.integrations.set(integrations)
    return channel, secret


def verified(requests, secret: str) -> list[dict]:
    """The events as a receiver sees them after ``standardwebhooks`` verified each one."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in requests]


def delivered(chat, query: str | None = None):
    """The requests the receiver answered 2xx (optionally: to the URL with this ``?t=``)."""
    return [
        r
        for _path, status, r in chat.answered
        if _path == WEBHOOK_PATH
        and 200 <= status < 300
        and (query is None or r.query.get("t") == [query])
    ]


def work(channel):
    return delivery.work_channel(channel.pk, budget=10)


# -- a real sync run ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_sync_run_sends_one_sync_completed_whose_cursor_reads_exactly_its_changes(
    tenant,
    sandbox,  # noqa: F811
    enqueued,  # noqa: F811
    chat,
):
    channel, secret = subscribe(tenant, chat.webhook_url)
    account = sandbox.account()
    sandbox.seed(account, 25)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
    api = client_for(tenant)

    first = run_once(task, enqueued)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error_summary
    work(channel)
    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    # The tenant edits a record itself between the runs: in the feed, but no run's change.
    local_changes.record_update(
        tenant_id=tenant.id,
        record_id=Record.objects.get(tenant=tenant, external_id=str(objs[20].pk)).id,
        data={"email": "edited-by-the-tenant@example.com"},
    )
    for obj in objs[:3]:
        sandbox_services.object_update(obj=obj, data={"email": f"new-{obj.pk}@example.com"})
    sandbox_services.object_delete(obj=objs[10])
    for n in range(2):
        sandbox_services.object_create(
            account=account, collection="contacts", data={"email": f"{n}@x"}
        )
    second = run_once(task, enqueued)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_summary
    work(channel)

    events = verified(delivered(chat), secret)
    completed = [e for e in events if e["type"] == "sync.completed"]
    assert [e["data"]["run"]["id"] for e in completed] == [str(first.pk), str(second.pk)]
    assert [e["data"]["counts"]["created"] for e in completed] == [25, 2]
    assert [e["data"]["counts"]["updated"] for e in completed] == [0, 3]
    assert [e["data"]["counts"]["deleted"] for e in completed] == [0, 1]
    # records.changed: once per run that changed records, before the run's sync.completed.
    assert [e["type"] for e in events] == ["records.changed", "sync.completed"] * 2
    assert completed[1]["data"]["task"] == {
        "id": str(task.pk),
        "name": task.name,
        "entity_type": "contacts",
        "mode": task.mode,
    }

    settle()
    sandbox_ids = {str(o.pk) for o in objs}
    for event, run in zip(completed, (first, second), strict=True):
        changes = event["data"]["changes"]
        page = api.get(changes["path"]).json()  # the cursor, as the event carries it
        assert page["has_more"] is False
        assert {c["source_id"] for c in page["results"]} == {str(run.pk)}
        assert len(page["results"]) == sum(event["data"]["counts"][k] for k in changes_counted())
        again = api.get(
            "/api/v1/records/changes/", {"run": changes["run"], "cursor": changes["cursor"]}
        ).json()
        assert again["results"] == page["results"]
    second_page = api.get(completed[1]["data"]["changes"]["path"]).json()["results"]
    assert (
        sorted(c["action"] for c in second_page) == ["created"] * 2 + ["deleted"] + ["updated"] * 3
    )
    assert {c["external_id"] for c in second_page if c["action"] != "created"} <= sandbox_ids


def changes_counted():
    return ("created", "updated", "deleted")


# -- a receiver that is down -------------------------------------------------------------------


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def ending(task: SyncTask, **counts) -> Endings:
    run = SyncRun.objects.create(tenant=task.tenant, task=task, mode=task.mode, **counts)
    return Endings(task, run, "token", "generic_rest", time.monotonic())


@pytest.mark.django_db
def test_a_receiver_down_for_ten_minutes_gets_every_event_afterwards_in_order(
    tenant, chat, clock, committed, settings
):
    """503 for ten minutes while five runs end (and a credential needs a human); once it is
    back, every event arrives, once, in the order raised — verified with standardwebhooks at
    the moment each arrives. No sync waited for the receiver."""
    settings.CASTIEL_NOTIFY_RETRY_CAP_SECONDS = 120
    channel, secret = subscribe(tenant, chat.webhook_url)
    task = make_sync_task(tenant)
    back_at = NOW + timedelta(minutes=10)
    chat.outage = lambda path: Answer(503, {}, "down") if timezone.now() < back_at else None

    raised, seen = [], []

    def arrived():
        fresh = delivered(chat)[len(seen) :]
        seen.extend(verified(fresh, secret))  # at arrival: the timestamp is fresh

    for n in range(5):
        if n == 2:
            committed(lambda: ending(task).fail("http_500", "the provider answered 500"))
            raised.append(("sync.failed", SyncRun.objects.order_by("-started_at").first()))
        else:
            committed(lambda n=n: ending(task, created=n).succeed())
            run = SyncRun.objects.order_by("-started_at").first()
            if n:
                raised.append(("records.changed", run))
            raised.append(("sync.completed", run))
        clock.shift(10)
        committed(lambda: work(channel))
        arrived()
    committed(
        lambda: emit(
            Kind.CREDENTIAL_REAUTH_REQUIRED,
            tenant=tenant,
            integration=task.integration_id,
            subject=Subject("integration", str(task.integration_id), "CRM"),
            message="invalid_grant",
        )
    )
    assert seen == [] and SyncRun.objects.filter(status="succeeded").count() == 4
    for _minute in range(16):
        clock.shift(60)
        if delivery.due_channels():
            committed(lambda: work(channel))
            arrived()

    expected = [(kind, str(run.pk)) for kind, run in raised] + [
        ("credential.reauth_required", None)
    ]
    assert [(e["type"], e["data"].get("run", {}).get("id")) for e in seen] == expected
    assert seen[-1]["data"]["integration"]["id"] == str(task.integration_id)
    assert seen[-1]["data"]["reason"] == "invalid_grant"
    failed = next(e for e in seen if e["type"] == "sync.failed")["data"]
    assert failed["error"]["code"] == "http_500" and failed["consecutive_failures"] == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    # While the head waited nothing behind it was tried: only the first event saw a 503.
    refused = {r.headers["webhook-id"] for p, s, r in chat.answered if s == 503}
    assert len(refused) == 1
    # Events are not incidents: nothing folded, nothing to resolve (the credential is one).
    assert set(Incident.objects.values_list("kind", flat=True)) <= {
        "credential.reauth_required",
        "notifications.channel_failing",
        "notifications.channel_recovered",
    }


@pytest.mark.django_db
def test_a_forged_or_replayed_event_fails_verification(tenant, chat, committed):
    channel, secret = subscribe(tenant, chat.webhook_url)
    committed(lambda: ending(make_sync_task(tenant)).succeed())
    work(channel)
    (request,) = delivered(chat)
    assert verified([request], secret)[0]["type"] == "sync.completed"
    with pytest.raises(WebhookVerificationError):
        forged = request.body.replace(b"sync.completed", b"sync.failed")
        Webhook(secret).verify(forged, request.headers)
    other_secret = services.channel_create(
        tenant=tenant, name="other", type="webhook", url=chat.webhook_url
    )[1]
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request.body, request.headers)


# -- who gets what -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_never_receives_another_tenants_events(tenant, other_tenant, chat, committed):
    channel_a, secret_a = subscribe(tenant, chat.webhook_url + "?t=a")
    channel_b, secret_b = subscribe(other_tenant, chat.webhook_url + "?t=b")
    task_a, task_b = make_sync_task(tenant), make_sync_task(other_tenant)
    for task in (task_a, task_a, task_b):
        committed(lambda task=task: ending(task, updated=1).succeed())
    work(channel_a)
    work(channel_b)

    got_a = verified(delivered(chat, "a"), secret_a)
    got_b = verified(delivered(chat, "b"), secret_b)
    assert [e["data"]["task"]["id"] for e in got_a] == [str(task_a.pk)] * 4
    assert [e["data"]["task"]["id"] for e in got_b] == [str(task_b.pk)] * 2
    assert {e["data"]["tenant_id"] for e in got_a} == {str(tenant.pk)}
    assert {e["data"]["tenant_id"] for e in got_b} == {str(other_tenant.pk)}
    # A's cursor is A's: with B's key it is refused.
    path = got_a[1]["data"]["changes"]["path"]
    assert client_for(other_tenant).get(path).status_code == 400
    assert client_for(tenant).get(path).status_code == 200


@pytest.mark.django_db
def test_types_and_integrations_narrow_a_subscription(tenant, chat, committed):
    task = make_sync_task(tenant)
    elsewhere = make_sync_task(tenant)
    channel, secret = subscribe(
        tenant,
        chat.webhook_url,
        event_types=["sync.failed"],
        integrations=[task.integration],
    )
    committed(lambda: ending(task, created=3).succeed())
    committed(lambda: ending(task).fail("auth", "401"))
    committed(lambda: ending(elsewhere).fail("auth", "401"))
    work(channel)
    events = verified(delivered(chat), secret)
    assert [(e["type"], e["data"]["task"]["id"]) for e in events] == [("sync.failed", str(task.pk))]


@pytest.mark.django_db
@pytest.mark.usefixtures("recorded_actions")
def test_webhook_received_is_sent_only_where_it_was_opted_into(tenant, chat, committed):
    import json

    from tests.webhooks.factories import make_event, make_registration
    from webhooks import processing
    from webhooks.models import WebhookEvent

    default, _secret = subscribe(tenant, chat.webhook_url + "?t=default")
    opted, opted_secret = subscribe(
        tenant,
        chat.webhook_url + "?t=opted",
        name="webhooks too",
        event_types=["webhook.received", "sync.completed"],
    )
    registration = make_registration(tenant, scheme="github")
    event = make_event(
        registration,
        status=WebhookEvent.Status.RECEIVED,
        headers={"X-Github-Event": "issues", "X-Github-Delivery": "d-1"},
        body=json.dumps({"action": "opened", "issue": {"id": 7, "title": "x"}}).encode(),
    )
    status = committed(lambda: processing.event_process(event_id=event.pk))
    work(default)
    work(opted)
    assert delivered(chat, "default") == []
    (received,) = verified(delivered(chat, "opted"), opted_secret)
    assert received["type"] == "webhook.received"
    assert received["data"]["webhook_event"]["id"] == str(event.pk)
    assert received["data"]["webhook_event"]["status"] == status
    assert received["data"]["registration"]["id"] == str(registration.pk)


# -- the API -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_subscribes_a_signed_webhook_and_names_the_field_it_refuses(
    tenant, other_tenant, chat
):
    api = client_for(tenant)
    hook, _ = services.channel_create(tenant=tenant, name="app", type="webhook", url=chat.url)
    email, _ = services.channel_create(
        tenant=tenant, name="ops", type="email", recipients=["ops@example.com"]
    )
    theirs, _ = services.channel_create(
        tenant=other_tenant, name="app", type="webhook", url=chat.url
    )
    url = "/api/v1/event-subscriptions/"

    created = api.post(
        url,
        {"name": "sync", "channel": str(hook.pk), "event_types": ["sync.completed"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["event_types"] == ["sync.completed"]

    def refused(body) -> dict:
        answer = api.post(url, {"name": "x", **body}, format="json")
        assert answer.status_code == 400, answer.json()
        return answer.json()

    assert "channel" in str(refused({"channel": str(email.pk)}))
    assert "channel" in str(refused({"channel": str(theirs.pk)}))
    assert "event_types" in str(refused({"channel": str(hook.pk), "event_types": ["sync.done"]}))
    assert client_for(other_tenant).get(url).json()["results"] == []
    assert api.get(url).json()["results"][0]["id"] == created.json()["id"]


@pytest.mark.django_db
def test_a_dead_event_is_replayed_from_the_api_with_the_same_id_and_body(
    tenant, chat, committed, settings
):
    settings.CASTIEL_NOTIFY_MAX_ATTEMPTS = 1
    settings.CASTIEL_NOTIFY_RETRY_FOR_MINUTES = 0
    channel, secret = subscribe(tenant, chat.webhook_url)
    chat.script(WEBHOOK_PATH, Answer(503, {}, "down"))
    committed(lambda: ending(make_sync_task(tenant), deleted=2).succeed())
    work(channel)  # records.changed: dead after its one attempt; sync.completed goes through
    api = client_for(tenant)
    dead = api.get("/api/v1/notification-deliveries/", {"kind": "event", "status": "dead"})
    [row] = dead.json()["results"]
    assert row["message"]["kind"] == "records.changed"
    assert row["message"]["counts"]["deleted"] == 2
    assert api.post(f"/api/v1/notification-deliveries/{row['id']}/replay/").status_code == 202
    work(channel)
    first_try = next(r for _p, s, r in chat.answered if s == 503)
    replayed = delivered(chat)[-1]
    assert replayed.headers["webhook-id"] == first_try.headers["webhook-id"]
    assert replayed.body == first_try.body
    assert [e["type"] for e in verified(delivered(chat), secret)] == [
        "sync.completed",
        "records.changed",
    ]
