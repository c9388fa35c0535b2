"""The Slack bot channel: a connected Slack integration's bot posts the alert
(``chat.postMessage``), edits it when the incident resolves (``chat.update``) and answers in
its thread — against a local server playing the Slack Web API (tests/notifications/slack_api.py).
Every message it sends passes slack_sdk's Block Kit validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from castiel.events import Kind, Subject, emit
from notifications import delivery, services
from notifications.models import Channel, Delivery, Incident, Subscription
from tests.conftest import client_for
from tests.integrations.providers.support import make_integration
from tests.notifications.slack_api import TOKEN, running_slack
from tests.notifications.support import assert_valid_slack

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TASK = Subject("synctask", "42", "contacts (Demo CRM)")
ROOM = "C06K1M3P5R7"
CHANNELS = "/api/v1/notification-channels/"


@pytest.fixture
def slack():
    with running_slack(members=(ROOM,)) as fake:
        yield fake
        for name, body in fake.calls:
            if name in ("chat.postMessage", "chat.update"):
                assert_valid_slack(body)


@pytest.fixture
def bot(tenant, slack):
    return make_integration(
        tenant,
        "slack",
        {"api_base": slack.url},
        credential=("bearer_token", {"token": TOKEN}, {}),
        name="Acme workspace",
    )


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def bot_channel(tenant, integration, conversation=ROOM) -> Channel:
    channel, _secret = services.channel_create(
        tenant=tenant,
        name="ops room",
        type="slack_bot",
        integration=integration,
        conversation=conversation,
        rate_limit_per_minute=6000,
    )
    Subscription.objects.create(tenant=tenant, name="all", channel=channel, min_severity=10)
    return channel


def fail(committed, tenant):
    committed(
        lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=TASK,
            message="HTTP 503 from https://crm.example.com/contacts",
            details={"consecutive_failures": 3},
        )
    )


def recover(committed, tenant):
    committed(lambda: emit(Kind.SYNC_RECOVERED, tenant=tenant, subject=TASK))


def run(channel):
    return delivery.work_channel(channel.pk, budget=10)


def test_the_alert_is_posted_then_edited_resolved_and_answered_in_its_thread(
    tenant, bot, slack, committed, frozen
):
    channel = bot_channel(tenant, bot)
    assert channel.target_hint == f"Acme workspace → {ROOM}"
    fail(committed, tenant)
    assert run(channel)["delivered"] == 1

    alert = Delivery.objects.get(kind="alert")
    (posted,) = slack.called("chat.postMessage")
    assert posted["channel"] == ROOM
    assert posted["text"] == "Sync task failing: contacts (Demo CRM)"
    assert posted["blocks"][0]["text"]["text"].startswith(":red_circle: Sync task failing")
    # The delivery's message id rides in Slack message metadata: the key to find a lost post.
    assert posted["metadata"] == {
        "event_type": "castiel_message",
        "event_payload": {"castiel_id": str(alert.message_id)},
    }
    (message,) = slack.messages(ROOM)
    assert alert.external_ref == f"{ROOM}:{message['ts']}"
    assert (alert.status, alert.response_status) == ("delivered", 200)

    recover(committed, tenant)
    assert run(channel)["delivered"] == 1
    (update,) = slack.called("chat.update")
    assert (update["channel"], update["ts"]) == (ROOM, message["ts"])
    assert update["text"] == "Resolved: Sync task failing: contacts (Demo CRM)"

    original, reply = slack.messages(ROOM)
    # What people see: the alert itself now reads resolved, and its thread says so.
    assert original["ts"] == message["ts"] and "edited" in original
    assert original["blocks"][0]["text"]["text"].startswith(":white_check_mark: Resolved")
    assert reply["thread_ts"] == message["ts"]
    assert reply["text"] == "Resolved: Sync task failing: contacts (Demo CRM)"
    resolved = Delivery.objects.get(kind="resolved")
    assert resolved.status == "delivered"
    assert resolved.external_ref == f"{ROOM}:{reply['ts']}"
    assert Incident.objects.get().state == "resolved"


def test_a_post_whose_answer_was_lost_is_found_not_posted_twice(
    tenant, bot, slack, committed, settings
):
    settings.CASTIEL_OUTBOUND_TIMEOUT = 0.5
    channel = bot_channel(tenant, bot)
    # Slack stores the message, but its answer comes after the client gave up.
    slack.script("chat.postMessage", ("store-then-sleep", 1.5))
    fail(committed, tenant)
    assert run(channel)["retry"] == 1
    assert len(slack.messages(ROOM)) == 1

    Delivery.objects.update(next_attempt_at=datetime.now(UTC))
    assert run(channel)["delivered"] == 1
    sent = Delivery.objects.get()
    (message,) = slack.messages(ROOM)  # still one message in the channel
    assert sent.attempts == 2 and sent.external_ref == f"{ROOM}:{message['ts']}"
    assert len(slack.called("conversations.history")) == 1


def test_slack_rate_limit_is_retried_no_sooner_than_retry_after(
    tenant, bot, slack, committed, frozen
):
    channel = bot_channel(tenant, bot)
    slack.script(
        "chat.postMessage", (429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"})
    )
    fail(committed, tenant)
    assert run(channel)["retry"] == 1
    waiting = Delivery.objects.get()
    assert waiting.status == "queued"
    assert waiting.next_attempt_at >= NOW + timedelta(seconds=30)
    assert slack.messages(ROOM) == []

    frozen.shift(timedelta(seconds=31))
    assert run(channel)["delivered"] == 1
    assert len(slack.messages(ROOM)) == 1


def test_a_bot_outside_the_conversation_is_a_dead_letter_with_slacks_reason(
    tenant, bot, slack, committed
):
    channel = bot_channel(tenant, bot, conversation="C0NOTAMEMBER")
    fail(committed, tenant)
    assert run(channel)["dead"] == 1
    dead = Delivery.objects.get()
    assert dead.status == "dead"
    assert "not_in_channel" in dead.last_error and dead.last_error.startswith("permanent")


def test_a_deleted_integration_leaves_a_clear_dead_letter(tenant, bot, committed):
    channel = bot_channel(tenant, bot)
    bot.delete()
    fail(committed, tenant)
    assert run(channel)["dead"] == 1
    assert "the Slack integration of this channel was deleted" in Delivery.objects.get().last_error


def test_the_token_never_reaches_the_delivery_or_the_logs(tenant, bot, slack, committed, caplog):
    channel = bot_channel(tenant, bot)
    fail(committed, tenant)
    run(channel)
    sent = Delivery.objects.get()
    assert TOKEN not in caplog.text
    assert TOKEN not in sent.response_body + sent.last_error + str(sent.message)


# -- API: bad input is a 400 naming the field, nothing saved ------------------------------------


def test_the_api_creates_a_bot_channel_and_shows_no_token(api, bot):
    answer = api.post(
        CHANNELS,
        {"name": "ops", "type": "slack_bot", "integration": str(bot.pk), "conversation": ROOM},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["integration"], body["conversation"]) == (str(bot.pk), ROOM)
    assert TOKEN not in answer.content.decode()


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"conversation": "#general"}, "conversation", "not a #name"),
        ({"conversation": ""}, "conversation", "required"),
        ({"integration": None}, "integration", "Choose the connected Slack integration"),
    ],
)
def test_bad_bot_channel_input_names_the_field(api, bot, change, field, says):
    body = {"name": "ops", "type": "slack_bot", "integration": str(bot.pk), "conversation": ROOM}
    answer = api.post(CHANNELS, {**body, **change}, format="json")
    assert answer.status_code == 400
    assert says in str(answer.json()["details"][field])
    assert not Channel.objects.exists()


def test_another_tenants_or_a_non_slack_integration_is_refused(api, tenant, other_tenant, bot):
    theirs = make_integration(other_tenant, "slack", name="their workspace")
    crm = make_integration(tenant, "hubspot", name="crm")
    for integration in (theirs, crm):
        answer = api.post(
            CHANNELS,
            {
                "name": f"ops {integration.pk}",
                "type": "slack_bot",
                "integration": str(integration.pk),
                "conversation": ROOM,
            },
            format="json",
        )
        assert answer.status_code == 400
        assert "integration" in answer.json()["details"]
    assert not Channel.objects.exists()
    # …and the other tenant cannot point its channel at this tenant's workspace either.
    answer = client_for(other_tenant).post(
        CHANNELS,
        {"name": "x", "type": "slack_bot", "integration": str(bot.pk), "conversation": ROOM},
        format="json",
    )
    assert answer.status_code == 400


# -- admin --------------------------------------------------------------------------------------


def test_the_admin_creates_a_bot_channel_and_its_test_message_lands_in_slack(
    admin_client, tenant, bot, slack
):
    response = admin_client.post(
        "/admin/notifications/channel/add/",
        {
            "tenant": str(tenant.pk),
            "name": "ops room",
            "type": "slack_bot",
            "enabled": "on",
            "integration": str(bot.pk),
            "conversation": ROOM,
            "rate_limit_per_minute": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get()
    assert (channel.integration_id, channel.conversation) == (bot.pk, ROOM)
    answer = admin_client.post(
        "/admin/notifications/channel/",
        {"action": "send_test", "_selected_action": [str(channel.pk)]},
        follow=True,
    ).content.decode()
    assert "room: delivered — HTTP 200" in answer, re.findall(
        r"<li class=\"[a-z]+\">(.*?)</li>", answer
    )
    (message,) = slack.messages(ROOM)
    assert message["text"].startswith("Test")


def test_the_admin_refuses_a_channel_name_instead_of_an_id(admin_client, tenant, bot):
    response = admin_client.post(
        "/admin/notifications/channel/add/",
        {
            "tenant": str(tenant.pk),
            "name": "ops room",
            "type": "slack_bot",
            "integration": str(bot.pk),
            "conversation": "#ops",
            "rate_limit_per_minute": "0",
        },
    )
    assert response.status_code == 200
    assert "not a #name" in response.content.decode()
    assert not Channel.objects.exists()
