"""Tenant API and admin: channels (secrets write-only), subscriptions, incidents, deliveries,
"send a test notification"; bad input is a 400 naming the field, and nothing is half-saved."""

from __future__ import annotations

import json
import re

import pytest

from castiel.events import Kind, Subject, emit
from credentials.models import StoredSecret
from notifications.models import Channel, Delivery, Incident, Subscription
from tests.notifications.support import SLACK_PATH, Answer

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

CHANNELS = "/api/v1/notification-channels/"
SUBSCRIPTIONS = "/api/v1/notification-subscriptions/"


def create_channel(api, **body):
    return api.post(CHANNELS, body, format="json")


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"type": "slack", "url": "not a url"}, "url", "absolute https:// URL"),
        ({"type": "slack", "url": "ftp://hooks.example.com/x"}, "url", "absolute https:// URL"),
        ({"type": "slack", "url": "https://user:pw@hooks.example.com/x"}, "url", "user name"),
        ({"type": "teams"}, "url", "required"),
        ({"type": "webhook", "url": "https://10.0.0.8/hooks"}, "url", "internal address"),
        ({"type": "webhook", "url": "https://[::ffff:127.0.0.1]/x"}, "url", "internal address"),
        (
            {"type": "webhook", "url": "https://app.example.com/x", "signing_secret": "hunter2"},
            "signing_secret",
            "whsec_",
        ),
        ({"type": "email", "recipients": ["ops@example.com", "nobody"]}, "recipients", "nobody"),
        ({"type": "email"}, "recipients", "email addresses"),
        ({"type": "pager"}, "type", "not a valid choice"),
    ],
)
def test_bad_channel_input_is_a_400_naming_the_field_and_nothing_is_saved(
    api, settings, body, field, fragment
):
    settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []  # production: no internal address
    secrets_before = StoredSecret.objects.count()
    response = create_channel(api, name="ops", **body)
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == "invalid"
    assert field in error["details"], error
    assert fragment in json.dumps(error["details"][field]), error
    assert not Channel.objects.exists()
    assert StoredSecret.objects.count() == secrets_before


def test_a_channel_url_that_is_not_https_is_refused_in_production(api, settings):
    settings.CASTIEL_NOTIFY_ALLOW_HTTP = False
    response = create_channel(api, name="ops", type="slack", url="http://hooks.example.com/x")
    assert response.status_code == 400
    assert response.json()["details"] == {"url": ["The URL must use https."]}
    assert not Channel.objects.exists()


def test_an_unknown_time_zone_is_a_400_naming_the_field(api, tenant):
    channel = create_channel(api, name="mail", type="email", recipients=["a@example.com"]).json()
    response = api.post(
        SUBSCRIPTIONS,
        {"name": "night", "channel": channel["id"], "timezone": "Mars/Olympus_Mons"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["timezone"]
    assert "Unknown time zone 'Mars/Olympus_Mons'" in response.json()["details"]["timezone"][0]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "digest", "digest_every": "daily"}, "digest_time"),
        ({"mode": "digest", "digest_every": "minutes", "digest_minutes": 1}, "digest_minutes"),
        ({"quiet_start": "22:00"}, "quiet_start"),
        ({"event_kinds": ["sync.nope"]}, "event_kinds"),
        # A tenant application event is not an incident: it has subscriptions of its own.
        ({"event_kinds": ["sync.completed"]}, "event_kinds"),
        ({"min_severity": "loud"}, "min_severity"),
    ],
)
def test_bad_subscription_input_names_the_field(api, body, field):
    channel = create_channel(api, name="mail", type="email", recipients=["a@example.com"]).json()
    response = api.post(
        SUBSCRIPTIONS, {"name": "s", "channel": channel["id"], **body}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"] or "quiet_end" in response.json()["details"]


def test_another_tenants_channel_or_integration_cannot_be_subscribed(api, other_api):
    theirs = create_channel(other_api, name="x", type="email", recipients=["a@example.com"]).json()
    response = api.post(SUBSCRIPTIONS, {"name": "s", "channel": theirs["id"]}, format="json")
    assert response.status_code == 400 and "channel" in response.json()["details"]


def test_secrets_are_write_only(api, chat):
    created = create_channel(api, name="ops", type="slack", url=chat.slack_url)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert "url" not in body and body["has_secret"] is True
    assert body["target"].startswith("http://127.0.0.1:") and "secret" not in body["target"]
    listed = json.dumps(api.get(CHANNELS).json())
    assert chat.slack_url not in listed and "XXXXsecretXXXX" not in listed
    # A new URL replaces the secret; leaving it out keeps it.
    channel = Channel.objects.get()
    version = channel.secret_version
    assert api.patch(f"{CHANNELS}{channel.pk}/", {"name": "ops2"}, format="json").status_code == 200
    channel.refresh_from_db()
    assert channel.secret_version == version
    changed = api.patch(f"{CHANNELS}{channel.pk}/", {"url": chat.slack_url + "2"}, format="json")
    assert changed.status_code == 200
    channel.refresh_from_db()
    assert channel.secret_version != version


def test_a_generated_signing_secret_is_shown_once(api, chat):
    created = create_channel(api, name="app", type="webhook", url=chat.webhook_url).json()
    assert created["signing_secret"].startswith("whsec_")
    again = api.get(f"{CHANNELS}{created['id']}/").json()
    assert "signing_secret" not in again
    assert created["signing_secret"] not in json.dumps(api.get(CHANNELS).json())


def test_a_given_signing_secret_is_used_and_never_shown(api, chat):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    response = create_channel(
        api, name="app", type="webhook", url=chat.webhook_url, signing_secret=secret
    )
    assert response.status_code == 201, response.json()
    assert "signing_secret" not in response.json()
    assert secret not in json.dumps(api.get(CHANNELS).json())


def test_send_a_test_notification_shows_the_channels_answer(api, chat):
    channel = create_channel(
        api, name="ops", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    ).json()
    chat.script(SLACK_PATH, Answer(404, {}, "channel_not_found"))
    failed = api.post(f"{CHANNELS}{channel['id']}/test/").json()
    assert (failed["status"], failed["response_status"], failed["response_body"]) == (
        "dead",
        404,
        "channel_not_found",
    )
    ok = api.post(f"{CHANNELS}{channel['id']}/test/").json()
    assert (ok["status"], ok["response_status"], ok["response_body"]) == ("delivered", 200, "ok")


def test_incidents_are_listed_acknowledged_and_resolved_by_hand(api, tenant, committed):
    committed(
        lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=Subject("synctask", "1", "c"),
            details={"consecutive_failures": 5},
        )
    )
    committed(lambda: emit(Kind.LIMITER_DEGRADED, subject=("ratelimiter", "redis", "Redis")))
    listed = api.get("/api/v1/incidents/?state=open").json()["results"]
    assert [i["kind"] for i in listed] == [
        "sync.failing"
    ]  # platform incidents are not the tenant's
    incident = listed[0]
    assert incident["severity"] == "error" and incident["subject"] == {
        "type": "synctask",
        "id": "1",
        "label": "c",
    }
    url = f"/api/v1/incidents/{incident['id']}/"
    assert api.post(url + "acknowledge/").json()["state"] == "acknowledged"
    assert api.post(url + "acknowledge/").status_code == 409
    resolved = api.post(url + "resolve/").json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"].startswith(
        "by hand: api key"
    )
    again = api.post(url + "resolve/")
    assert again.status_code == 409 and again.json()["code"] == "incident_state"
    assert api.get("/api/v1/incidents/?state=resolved").json()["count"] == 1


def test_dead_deliveries_are_replayed_from_the_api(api, tenant, chat, committed):
    channel = create_channel(
        api, name="ops", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    ).json()
    api.post(
        SUBSCRIPTIONS,
        {"name": "s", "channel": channel["id"], "min_severity": "info"},
        format="json",
    )
    chat.script(SLACK_PATH, Answer(410, {}, "channel_is_archived"))
    committed(
        lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=("synctask", "1", "c"),
            details={"consecutive_failures": 5},
        )
    )
    from notifications import delivery

    delivery.work_channel(channel["id"], budget=5)
    dead = api.get("/api/v1/notification-deliveries/?status=dead").json()["results"]
    assert len(dead) == 1 and dead[0]["response_body"] == "channel_is_archived"
    replayed = api.post(f"/api/v1/notification-deliveries/{dead[0]['id']}/replay/")
    assert replayed.status_code == 202 and replayed.json()["status"] == "queued"
    assert api.post(f"/api/v1/notification-deliveries/{dead[0]['id']}/replay/").status_code == 409
    delivery.work_channel(channel["id"], budget=5)
    assert Delivery.objects.get(pk=dead[0]["id"]).status == "delivered"


def test_a_digest_subscription_gets_its_clock(api):
    channel = create_channel(api, name="mail", type="email", recipients=["a@example.com"]).json()
    response = api.post(
        SUBSCRIPTIONS,
        {
            "name": "daily",
            "channel": channel["id"],
            "mode": "digest",
            "digest_every": "daily",
            "digest_time": "09:00",
            "timezone": "Europe/Berlin",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["next_digest_at"] is not None


# -- admin -----------------------------------------------------------------------------------


@pytest.fixture
def operator(admin_client):
    return admin_client


def test_the_admin_creates_a_channel_with_a_write_only_url_and_sends_a_test(operator, chat):
    response = operator.post(
        "/admin/notifications/channel/add/",
        {
            "name": "ops",
            "type": "slack",
            "enabled": "on",
            "rate_limit_per_minute": "0",
            "url": chat.slack_url,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel = Channel.objects.get()
    assert channel.tenant is None and channel.has_secret
    page = operator.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    assert "XXXXsecretXXXX" not in page
    answer = operator.post(
        "/admin/notifications/channel/",
        {"action": "send_test", "_selected_action": [str(channel.pk)]},
        follow=True,
    ).content.decode()
    assert "Ops: delivered — HTTP 200: ok" in answer, re.findall(
        r'<li class="[a-z]+">(.*?)</li>', answer
    )


def test_the_admin_refuses_a_bad_url_naming_the_field(operator, settings):
    settings.CASTIEL_NOTIFY_ALLOW_HTTP = False
    response = operator.post(
        "/admin/notifications/channel/add/",
        {
            "name": "ops",
            "type": "teams",
            "rate_limit_per_minute": "0",
            "url": "http://x.example.com/hook",
        },
    )
    assert response.status_code == 200
    assert "The URL must use https." in response.content.decode()
    assert not Channel.objects.exists()


def test_the_admin_resolves_incidents_and_replays_deliveries(operator, tenant, committed):
    committed(
        lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant,
            subject=("synctask", "1", "c"),
            details={"consecutive_failures": 5},
        )
    )
    incident = Incident.objects.get()
    operator.post(
        "/admin/notifications/incident/",
        {"action": "resolve", "_selected_action": [str(incident.pk)]},
    )
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_by == "by hand: admin"
    page = operator.get(f"/admin/notifications/incident/{incident.pk}/change/")
    assert page.status_code == 200
