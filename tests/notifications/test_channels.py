"""Each channel type against a real local server: Slack and Teams (a local HTTP server playing
them), email (a real SMTP server, aiosmtpd), signed webhooks (verified with the
``standardwebhooks`` package). The exact payloads are asserted; every Slack message passes
slack_sdk's validation and every Teams card Microsoft's parser (the ``chat`` fixture)."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import pytest
import time_machine
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

from castiel.events import Kind, Subject, emit
from notifications import delivery, services
from notifications.channels import slack, teams
from notifications.models import Delivery, Incident, Subscription
from tests.notifications.support import (
    SLACK_PATH,
    TEAMS_PATH,
    WEBHOOK_PATH,
    assert_valid_slack,
    assert_valid_teams,
)
from tests.support.services import free_port

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TASK = Subject("synctask", "42", "contacts (Demo CRM)")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def open_incident(committed):
    def open_(tenant, integration=None, **kwargs):
        committed(lambda: _fail(tenant, integration, **kwargs))
        return Incident.objects.get(state="open")

    return open_


def _fail(tenant, integration=None, **kwargs):
    return emit(
        Kind.SYNC_FAILING,
        tenant=tenant,
        subject=TASK,
        integration=integration,
        message=kwargs.pop("message", "HTTP 503 from https://crm.example.com/contacts"),
        details={"consecutive_failures": 3},
        **kwargs,
    )


def subscribe(tenant, channel, **fields):
    fields.setdefault("min_severity", 10)
    return Subscription.objects.create(tenant=tenant, name="alerts", channel=channel, **fields)


def channel_of(tenant, type, **data):
    data.setdefault("rate_limit_per_minute", 6000)
    channel, secret = services.channel_create(
        tenant=tenant, name=f"{type} channel", type=type, **data
    )
    channel._generated_secret = secret
    return channel


def run(channel):
    return delivery.work_channel(channel.pk, budget=10)


# -- Slack -----------------------------------------------------------------------------------


def test_slack_gets_this_exact_block_kit_message(tenant, open_incident, chat, frozen, caplog):
    channel = channel_of(tenant, "slack", url=chat.slack_url)
    subscribe(tenant, channel)
    incident = open_incident(tenant)
    assert run(channel)["delivered"] == 1
    (request,) = chat.received(SLACK_PATH)
    assert request.headers["content-type"] == "application/json"
    link = f"https://castiel.example.com/admin/notifications/incident/{incident.pk}/change/"
    assert request.json() == {
        "text": "Sync task failing: contacts (Demo CRM)",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":red_circle: Sync task failing: contacts (Demo CRM)",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "HTTP 503 from https://crm.example.com/contacts",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Subject*\ncontacts (Demo CRM)"},
                    {"type": "mrkdwn", "text": "*Tenant*\nTenant A"},
                    {"type": "mrkdwn", "text": "*Severity*\nerror"},
                    {"type": "mrkdwn", "text": "*Occurrences*\n1"},
                    {"type": "mrkdwn", "text": "*First seen*\n2026-03-02T09:30:00Z"},
                ],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Castiel"},
                        "url": link,
                        "action_id": "open",
                    }
                ],
            },
        ],
    }
    sent = Delivery.objects.get()
    assert (sent.status, sent.attempts, sent.response_status, sent.response_body) == (
        "delivered",
        1,
        200,
        "ok",
    )
    # The webhook URL is the credential: it never reaches a log line.
    assert SLACK_PATH not in caplog.text and "XXXXsecretXXXX" not in caplog.text


def test_slack_limits_are_enforced_before_sending(tenant):
    long = {
        "kind": "alert",
        "severity": "warning",
        "title": "T" * 400,
        "summary": "<script>&" + "s" * 5000,
        "link": "",
        "fields": [[f"f{n}", "v" * 3000] for n in range(15)],
        "groups": [
            {
                "tenant": "A",
                "integration": f"I{n}",
                "opened": 1,
                "resolved": 0,
                "still_open": 1,
                "incidents": [{"title": "x" * 500, "state": "open", "occurrences": 1, "link": ""}]
                * 20,
            }
            for n in range(80)
        ],
    }
    payload = slack.SlackWebhook().render(long)
    assert_valid_slack(payload)
    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][1]["text"]["text"].startswith("&lt;script&gt;&amp;")


def test_slack_rate_limit_429_is_retried_no_sooner_than_retry_after(
    tenant, open_incident, chat, frozen
):
    from tests.notifications.support import Answer

    channel = channel_of(tenant, "slack", url=chat.slack_url)
    subscribe(tenant, channel)
    chat.script(SLACK_PATH, Answer(429, {"Retry-After": "30"}, "rate_limited"))
    open_incident(tenant)
    assert run(channel) == {"delivered": 0, "retry": 1, "dead": 0, "deferred": 0}
    waiting = Delivery.objects.get()
    assert waiting.status == "queued" and waiting.attempts == 1
    assert (waiting.next_attempt_at - NOW).total_seconds() >= 30
    assert waiting.response_status == 429 and "rate limited" in waiting.last_error
    frozen.shift(29)
    assert run(channel)["delivered"] == 0  # not due yet
    frozen.shift(2)
    assert run(channel)["delivered"] == 1
    assert len(chat.received(SLACK_PATH)) == 2


# -- Teams -----------------------------------------------------------------------------------


def test_teams_gets_an_adaptive_card_1_4(tenant, open_incident, chat, frozen):
    channel = channel_of(tenant, "teams", url=chat.teams_url + "?api-version=2016-06-01&sig=SECRET")
    subscribe(tenant, channel)
    incident = open_incident(tenant)
    assert run(channel)["delivered"] == 1
    (request,) = chat.received(TEAMS_PATH)
    assert request.query["sig"] == ["SECRET"]
    link = f"https://castiel.example.com/admin/notifications/incident/{incident.pk}/change/"
    assert request.json() == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "Sync task failing: contacts (Demo CRM)",
                            "weight": "Bolder",
                            "size": "Medium",
                            "color": "Attention",
                            "wrap": True,
                        },
                        {
                            "type": "TextBlock",
                            "text": "HTTP 503 from https://crm.example.com/contacts",
                            "wrap": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Subject", "value": "contacts (Demo CRM)"},
                                {"title": "Tenant", "value": "Tenant A"},
                                {"title": "Severity", "value": "error"},
                                {"title": "Occurrences", "value": "1"},
                                {"title": "First seen", "value": "2026-03-02T09:30:00Z"},
                            ],
                        },
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": "Open in Castiel", "url": link}
                    ],
                },
            }
        ],
    }
    assert Delivery.objects.get().response_status == 202


def test_every_kind_of_message_renders_a_valid_card_and_slack_message(tenant):
    """Alerts of every catalogue kind and severity, reminders, resolutions, tests, and a large
    digest: one parse by Microsoft's package for all the cards."""
    from castiel.events import CATALOGUE
    from notifications import messages

    rendered = []
    now = datetime(2026, 3, 2, tzinfo=UTC)
    for kind, spec in CATALOGUE.items():
        incident = Incident(
            kind=str(kind),
            fingerprint="f",
            severity=spec.severity,
            subject_type=spec.subject_type,
            subject_id="1",
            subject_label="a <b>subject</b> & more",
            occurrences=3,
            first_seen_at=now,
            last_seen_at=now,
            resolved_at=now,
        )
        for change in ("alert", "reminder", "resolved"):
            rendered.append(messages.for_incident(incident, change))
    groups = [
        {
            "tenant": f"T{n}",
            "integration": "CRM",
            "opened": 3,
            "resolved": 1,
            "still_open": 2,
            "incidents": [
                {
                    "title": "Sync task failing: x" * 5,
                    "state": "open",
                    "occurrences": 9,
                    "link": "https://castiel.example.com/admin/x",
                }
            ]
            * 20,
            "more": 4,
        }
        for n in range(40)
    ]
    rendered.append(
        messages.for_digest(
            period_start=now,
            period_end=now,
            groups=groups,
            totals={"opened": 120, "resolved": 40, "still_open": 80},
        )
    )
    for message in rendered:
        assert_valid_slack(slack.SlackWebhook().render(message))
    assert_valid_teams([teams.TeamsWorkflow().render(m) for m in rendered])


# -- email -----------------------------------------------------------------------------------


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "castiel@example.com"
    yield inbox
    controller.stop()


def test_email_goes_through_a_real_smtp_server_as_text_and_html(
    tenant, open_incident, smtp, frozen
):
    channel = channel_of(tenant, "email", recipients="ops@example.com, oncall@example.com")
    subscribe(tenant, channel)
    incident = open_incident(tenant, message="Token <expired> & more")
    assert run(channel)["delivered"] == 1
    (envelope,) = smtp.messages
    assert envelope.mail_from == "castiel@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    parsed = email.message_from_bytes(envelope.content, policy=policy.default)
    assert parsed["Subject"] == "Sync task failing: contacts (Demo CRM)"
    assert parsed["X-Castiel-Message-Id"] == str(Delivery.objects.get().message_id)
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = parsed.get_body(("html",)).get_content()
    link = f"https://castiel.example.com/admin/notifications/incident/{incident.pk}/change/"
    assert text == (
        "Sync task failing: contacts (Demo CRM)\n\nToken <expired> & more\n\n"
        "Subject: contacts (Demo CRM)\nTenant: Tenant A\nSeverity: error\nOccurrences: 1\n"
        f"First seen: 2026-03-02T09:30:00Z\n\nOpen in Castiel: {link}\n"
    )
    assert "<p>Token &lt;expired&gt; &amp; more</p>" in html
    assert f'<a href="{link}">Open in Castiel</a>' in html
    assert Delivery.objects.get().response_status == 250


def test_an_unreachable_smtp_server_is_retried(tenant, open_incident, settings, frozen):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    channel = channel_of(tenant, "email", recipients=["ops@example.com"])
    subscribe(tenant, channel)
    open_incident(tenant)
    assert run(channel)["retry"] == 1
    assert "SMTP server unreachable" in Delivery.objects.get().last_error


# -- signed webhooks -------------------------------------------------------------------------


def test_signed_webhooks_verify_with_the_standardwebhooks_package(
    tenant, open_incident, chat, frozen
):
    channel = channel_of(tenant, "webhook", url=chat.webhook_url)
    secret = channel._generated_secret
    assert secret.startswith("whsec_")
    subscribe(tenant, channel)
    incident = open_incident(tenant)
    assert run(channel)["delivered"] == 1
    (request,) = chat.received(WEBHOOK_PATH)
    sent = Delivery.objects.get()
    assert request.headers["webhook-id"] == f"msg_{sent.message_id.hex}"
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "incident.opened" and payload["timestamp"] == "2026-03-02T09:30:00Z"
    assert payload["data"]["incident"]["id"] == str(incident.pk)
    assert payload["data"]["incident"]["fingerprint"] == f"sync.failing:{tenant.pk}:synctask:42"
    with pytest.raises(Exception, match="No matching signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)
