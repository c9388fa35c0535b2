"""The sandbox's chat inbox, and the demo subscribed to it: breaking the sandbox's CRM makes an
alert arrive there, and repairing it posts the resolution (every queued task run inline,
against a live server) — seen in a real browser, as the README's walkthrough shows it
(screenshots in test-artifacts/screenshots/chat-inbox-*.png)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from castiel.tenancy.models import Tenant
from notifications.models import Channel, Incident, Subscription
from sandbox import services as sandbox_services
from sandbox.models import SandboxAccount, SandboxObject
from syncing.models import SyncTask
from tests.conftest import client_for
from tests.ui.browser import shot

pytestmark = [pytest.mark.embedded]


@pytest.mark.django_db
def test_the_inbox_shows_slack_and_teams_messages_once_each(client):
    sandbox_services.account_create(slug="demo")
    slack = {
        "text": "Sync task failing: contacts",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": ":red_circle: Sync task failing"},
            },
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Tenant*\nDemo"}]},
        ],
    }
    for _ in range(2):  # a sender's retry: same message id
        response = client.post(
            "/sandbox/demo/chat/slack/",
            json.dumps(slack),
            content_type="application/json",
            HTTP_X_CASTIEL_MESSAGE_ID="m-1",
        )
        assert (response.status_code, response.content) == (200, b"ok")
    card = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": "Resolved: Sync task failing"},
                        {"type": "FactSet", "facts": [{"title": "Tenant", "value": "Demo"}]},
                    ],
                },
            }
        ],
    }
    assert (
        client.post(
            "/sandbox/demo/chat/teams/", json.dumps(card), content_type="application/json"
        ).status_code
        == 202
    )
    assert (
        client.post(
            "/sandbox/demo/chat/slack/", "nope", content_type="application/json"
        ).status_code
        == 400
    )
    html = client.get("/sandbox/demo/chat/").content.decode()
    # Drawn as a chat client draws Slack mrkdwn: the emoji, the bold label.
    assert html.count('<span class="emoji error">\N{BLACK LARGE CIRCLE}</span> Sync task') == 1
    assert "<b>Tenant</b>: Demo" in html and "Resolved: Sync task failing" in html
    listed = client.get("/sandbox/demo/chat/", HTTP_ACCEPT="application/json").json()["messages"]
    assert [m["style"] for m in listed] == ["teams", "slack"]


@pytest.fixture
def seeded(live_server, monkeypatch, tmp_path, settings):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setattr(settings, "DATA_DIR", tmp_path)
    monkeypatch.setenv("CASTIEL_SANDBOX_BASE_URL", live_server.url)
    settings.CASTIEL_RATELIMIT_BACKEND = "database"  # its clock is the one time-machine moves
    settings.CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS = 60
    call_command("seed_demo", "--base-url", live_server.url, stdout=StringIO())
    return Tenant.objects.get(slug="demo")


def inbox(live_server):
    return Client().get("/sandbox/demo/chat/", HTTP_ACCEPT="application/json").json()["messages"]


def seen_in_browser(page, live_server, name: str) -> list[str]:
    """The inbox as a person sees it: the titles of the messages shown, newest first."""
    page.goto(f"{live_server.url}/sandbox/demo/chat/")
    page.wait_for_selector("main")
    shot(page, f"chat-inbox-{name}")
    assert page.js_errors == []
    return [title.strip() for title in page.locator(".msg .title").all_inner_texts()]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_breaking_the_sandbox_posts_an_alert_to_the_demo_inbox_and_repairing_it_the_resolution(
    seeded, live_server, page
):
    tenant = seeded
    channel = Channel.objects.get(tenant=tenant, name="Demo chat (sandbox)")
    assert Subscription.objects.filter(tenant=tenant, channel=channel).count() == 1
    call_command("seed_demo", "--base-url", live_server.url, stdout=StringIO())  # idempotent
    assert Channel.objects.filter(tenant=tenant).count() == 1
    api = client_for(tenant)
    task = SyncTask.objects.get(tenant=tenant, entity_type="contacts")

    # Walkthrough step 6: the CRM answers every request with 429 and "come back in 2 minutes".
    account = SandboxAccount.objects.get(slug="demo")
    sandbox_services.account_configure(
        account=account, faults={"rate_limit_rate": 1.0, "retry_after": 120}
    )
    assert api.post(f"/api/v1/sync-tasks/{task.pk}/run-now/").status_code in (200, 202)
    incident = Incident.objects.get(tenant=tenant, kind="ratelimit.quota_exhausted")
    assert incident.state == "open"
    (alert,) = inbox(live_server)
    assert seen_in_browser(page, live_server, "alert") == [
        "\N{WARNING SIGN} Provider quota exhausted: Demo CRM (sandbox)"
    ]
    # The integration is named, not shown as its id.
    assert alert["title"] == ":warning: Provider quota exhausted: Demo CRM (sandbox)"

    # Switched off; once the provider's two minutes are over the next sync goes through.
    sandbox_services.account_configure(account=account, faults={})
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=True):
        SyncTask.objects.filter(pk=task.pk).update(next_run_at=timezone.now())
        assert api.post(f"/api/v1/sync-tasks/{task.pk}/run-now/").status_code in (200, 202)
    incident.refresh_from_db()
    assert incident.state == "resolved"
    messages = inbox(live_server)
    assert [m["title"].split(" ", 1)[0] for m in messages] == [":white_check_mark:", ":warning:"]
    shown = seen_in_browser(page, live_server, "resolved")
    assert shown[0] == (
        "\N{HEAVY CHECK MARK} Resolved: Provider quota exhausted: Demo CRM (sandbox)"
    )
    assert len(shown) == 2
    assert SandboxObject.objects.filter(collection="chat-inbox").count() == 2
    assert settings.CASTIEL_NOTIFY_ALLOW_HTTP  # the inbox is plain http on the embedded profile


@pytest.mark.django_db
def test_what_a_message_says_is_escaped_in_the_inbox(client):
    sandbox_services.account_create(slug="demo")
    hostile = {"text": "<script>alert(1)</script> *bold* <https://x.example.com/a|open>"}
    client.post("/sandbox/demo/chat/slack/", json.dumps(hostile), content_type="application/json")
    html = client.get("/sandbox/demo/chat/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <b>bold</b>" in html
    assert '<a href="https://x.example.com/a">open</a>' in html
