"""Slack: an incoming-webhook URL receiving Block Kit messages.

Blocks are built with ``slack_sdk``'s Block Kit models, whose ``to_dict()`` checks Slack's
limits (header ≤ 150 characters, section text ≤ 3,000, ≤ 10 fields of ≤ 2,000 …) before
anything is sent; texts are clipped to fit first, and a message keeps to Slack's 50 blocks.
The webhook URL is a secret (its path is the credential): it lives in the secret store.

Slack answers ``200 ok``; ``429`` with ``Retry-After`` (about one message per second per
webhook) and 5xx are retried, other 4xx (``invalid_payload``, ``channel_not_found``,
``channel_is_archived``, ``action_prohibited``) are permanent.

A bot token of a connected Slack integration is the other way in: ``slack_bot.py``.
"""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from notifications.channels.base import ChannelType, Sent, origin_hint, post, url_error

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FALLBACK_MAX = 3000
EMOJI = {
    "critical": ":rotating_light:",
    "error": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}


def clip(text: str, limit: int) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _emoji(message: dict) -> str:
    if message["kind"] == "resolved":
        return ":white_check_mark:"
    return EMOJI.get(message.get("severity", "info"), ":information_source:")


def _fields(pairs) -> list[MarkdownTextObject]:
    return [
        MarkdownTextObject(text=clip(f"*{escape(label)}*\n{escape(value)}", FIELD_MAX))
        for label, value in pairs[:10]
        if value not in (None, "")
    ]


def blocks_for(message: dict) -> list:
    blocks: list = [
        HeaderBlock(
            text=PlainTextObject(text=clip(f"{_emoji(message)} {message['title']}", HEADER_MAX))
        )
    ]
    if message.get("summary"):
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=clip(escape(message["summary"]), SECTION_MAX))
            )
        )
    fields = _fields(message.get("fields") or [])
    if fields:
        blocks.append(SectionBlock(fields=fields))
    for group in message.get("groups") or []:
        if len(blocks) >= MAX_BLOCKS - 3:
            break
        blocks.append(DividerBlock())
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=clip(_group_text(group), SECTION_MAX)))
        )
    shown = sum(1 for b in blocks if isinstance(b, DividerBlock))
    hidden = len(message.get("groups") or []) - shown
    if hidden > 0:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"…and {hidden} more in the admin")])
        )
    if message.get("link"):
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Open in Castiel"),
                        url=message["link"],
                        action_id="open",
                    )
                ]
            )
        )
    return blocks[:MAX_BLOCKS]


def payload(message: dict) -> dict:
    """The Block Kit message both Slack channel types send (webhook and bot)."""
    return {
        "text": clip(message["title"], FALLBACK_MAX),
        "blocks": [block.to_dict() for block in blocks_for(message)],
    }


def _group_text(group: dict) -> str:
    where = " / ".join(escape(p) for p in (group.get("tenant"), group.get("integration")) if p)
    head = (
        f"*{where or 'Platform'}*: {group['opened']} opened, {group['resolved']} resolved, "
        f"{group['still_open']} still open"
    )
    lines = []
    for item in group.get("incidents") or []:
        label = escape(f"{item['title']} ({item['state']}, {item['occurrences']}x)")
        lines.append(f"• <{item['link']}|{label}>" if item.get("link") else f"• {label}")
    if group.get("more"):
        lines.append(f"…and {group['more']} more")
    return "\n".join([head, *lines])


class SlackWebhook(ChannelType):
    type = "slack"
    default_rate = (1, 1.0)  # Slack: about one message per second per webhook
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
        return payload(message)

    def send(self, channel, delivery, secrets: dict) -> Sent:
        body = json.dumps(self.render(delivery.message, delivery), ensure_ascii=False).encode()
        headers = {"X-Castiel-Message-Id": str(delivery.message_id)}  # for receivers that dedupe
        return post(channel, self, secrets["url"], body=body, headers=headers, secret_url=True)
