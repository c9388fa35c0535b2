"""Microsoft Teams: a Workflows (Power Automate) webhook receiving an Adaptive Card.

Office 365 connectors (``MessageCard``) are retired; a Teams *Workflows* webhook ("When a
Teams webhook request is received" → "Post card in a chat or channel") takes a message whose
attachment is an Adaptive Card. Castiel targets **Adaptive Card 1.4**: below Teams' ceiling
of 1.5, and only elements every Teams client renders (TextBlock, FactSet, Container,
Action.OpenUrl). Cards are kept under Teams' 28 KB message limit (a digest shows fewer
incidents per group until it fits).

The URL carries its credential (the ``sig`` query parameter): it lives in the secret store.
Workflows answer ``202 Accepted``; 429 and 5xx are retried, other 4xx are permanent.
"""

from __future__ import annotations

import json

from notifications.channels.base import ChannelType, Sent, origin_hint, post, url_error

CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28_000
TEXT_MAX = 2000
COLOR = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Default"}


def _text(text, limit: int = TEXT_MAX) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(pairs) -> dict:
    return {
        "type": "FactSet",
        "facts": [
            {"title": _text(label, 200), "value": _text(value, 500)}
            for label, value in pairs
            if value not in (None, "")
        ],
    }


def _group(group: dict, limit: int) -> dict:
    where = " / ".join(p for p in (group.get("tenant"), group.get("integration")) if p)
    items = []
    incidents = group.get("incidents") or []
    for item in incidents[:limit]:
        label = f"{item['title']} ({item['state']}, {item['occurrences']}x)"
        line = f"- [{label}]({item['link']})" if item.get("link") else f"- {label}"
        items.append({"type": "TextBlock", "text": _text(line), "wrap": True, "spacing": "None"})
    more = (group.get("more") or 0) + max(0, len(incidents) - limit)
    if more:
        items.append({"type": "TextBlock", "text": f"…and {more} more", "wrap": True})
    return {
        "type": "Container",
        "separator": True,
        "items": [
            {
                "type": "TextBlock",
                "text": _text(where or "Platform"),
                "weight": "Bolder",
                "wrap": True,
            },
            _facts(
                [
                    ["Opened", str(group["opened"])],
                    ["Resolved", str(group["resolved"])],
                    ["Still open", str(group["still_open"])],
                ]
            ),
            *items,
        ],
    }


def card_for(message: dict, *, per_group: int = 20) -> dict:
    color = (
        "Good" if message["kind"] == "resolved" else COLOR.get(message.get("severity"), "Default")
    )
    body: list = [
        {
            "type": "TextBlock",
            "text": _text(message["title"], 500),
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
            "wrap": True,
        }
    ]
    if message.get("summary"):
        body.append({"type": "TextBlock", "text": _text(message["summary"]), "wrap": True})
    if message.get("fields"):
        body.append(_facts(message["fields"]))
    body += [_group(group, per_group) for group in message.get("groups") or []]
    card: dict = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if message.get("link"):
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Castiel", "url": message["link"]}
        ]
    return card


def payload_for(message: dict) -> dict:
    per_group = 20
    while True:
        payload = {
            "type": "message",
            "attachments": [
                {
                    "contentType": CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": card_for(message, per_group=per_group),
                }
            ],
        }
        if per_group == 0 or len(json.dumps(payload).encode()) <= MAX_BYTES:
            return payload
        per_group //= 2


class TeamsWorkflow(ChannelType):
    type = "teams"
    default_rate = (4, 1.0)
    secret_fields = ("url",)

    def clean(self, data: dict, *, channel=None, tenant=None):
        errors, secret = {}, {}
        if "url" in data or channel is None:
            error = url_error(data.get("url"))
            if error:
                errors["url"] = error
            else:
                secret["url"] = data["url"].strip()
        return {}, secret, errors

    def hint(self, public: dict, secret: dict) -> str:
        return origin_hint(secret["url"]) if secret.get("url") else ""

    def render(self, message: dict, delivery=None) -> dict:
        return payload_for(message)

    def send(self, channel, delivery, secrets: dict) -> Sent:
        body = json.dumps(self.render(delivery.message, delivery), ensure_ascii=False).encode()
        headers = {"X-Castiel-Message-Id": str(delivery.message_id)}  # for receivers that dedupe
        return post(channel, self, secrets["url"], body=body, headers=headers, secret_url=True)
