"""Signed webhook: JSON events to a tenant's own application, signed with Standard Webhooks.

Headers (https://www.standardwebhooks.com/): ``webhook-id`` (``msg_<message id>``, the same on
every retry of one delivery, so the receiver can drop duplicates), ``webhook-timestamp``
(Unix seconds at sending) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``, keyed with the base64-decoded part of the ``whsec_…`` secret).

The body is ``{"type": …, "timestamp": …, "data": <the message>}`` with type
``incident.opened`` | ``incident.reminder`` | ``incident.resolved`` | ``digest.created`` |
``test``, or for the events of a tenant's application the event type itself
(``sync.completed`` …: the message's ``kind``, notifications/event_webhooks.py); it is the
same bytes on every retry. The signing secret lives in the secret store;
it is shown once, when Castiel generates it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from notifications.channels.base import ChannelType, Sent, post, url_error

TYPES = {
    "alert": "incident.opened",
    "reminder": "incident.reminder",
    "resolved": "incident.resolved",
    "digest": "digest.created",
    "test": "test",
}
PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_error(value) -> str | None:
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return (
            "A signing secret looks like whsec_ followed by base64 (leave it out to generate one)."
        )
    try:
        key = base64.b64decode(value[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return "The part after whsec_ must be base64."
    if not 24 <= len(key) <= 64:
        return "The signing key must be 24 to 64 bytes (32 recommended)."
    return None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len(PREFIX) :])
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id(delivery) -> str:
    return f"msg_{delivery.message_id.hex}"


class SignedWebhook(ChannelType):
    type = "webhook"
    default_rate = (10, 1.0)
    secret_fields = ("signing_secret",)

    def clean(self, data: dict, *, channel=None, tenant=None):
        errors, public, secret = {}, {}, {}
        if "url" in data or channel is None:
            error = url_error(data.get("url"))
            if error:
                errors["url"] = error
            else:
                public["url"] = data["url"].strip()
        if data.get("signing_secret"):
            error = secret_error(data["signing_secret"])
            if error:
                errors["signing_secret"] = error
            else:
                secret["signing_secret"] = data["signing_secret"]
        elif channel is None:
            secret["signing_secret"] = new_secret()
            secret["_generated"] = True
        return public, secret, errors

    def hint(self, public: dict, secret: dict) -> str:
        return public.get("url", "")[:300]

    def render(self, message: dict, delivery) -> bytes:
        created = delivery.created_at.isoformat().replace("+00:00", "Z")
        event = {
            "type": TYPES.get(message["kind"], message["kind"]),
            "timestamp": created,
            "data": message,
        }
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()

    def send(self, channel, delivery, secrets: dict) -> Sent:
        body = self.render(delivery.message, delivery)
        msg_id = message_id(delivery)
        timestamp = int(time.time())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secrets["signing_secret"], msg_id, timestamp, body),
        }
        return post(channel, self, channel.url, body=body, headers=headers, secret_url=False)
