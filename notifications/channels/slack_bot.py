"""Slack through a bot: the bot token of a connected Slack integration posts the alert with
``chat.postMessage`` and, when the incident resolves, edits that same message with
``chat.update`` (so the channel's history shows the alert as resolved) and answers in its
thread, which notifies whoever follows it.

Nothing here talks HTTP by itself: the message goes out through the Slack integration's own
adapter (integrations/providers/slack/adapter.py) — its credential (refreshed, audited,
``reauth_required`` when revoked), its share of the shared rate limiter, the SSRF guard and
Slack's error dialect (HTTP 200 ``{"ok": false}``; ``ratelimited`` → 429 with ``Retry-After``).
The channel adds the per-channel limit of the notification channels on top.

Exactly once, even if a worker dies mid-send: every post carries the delivery's message id in
Slack message metadata (the adapter's marker); a retry first looks for it in the channel's
recent history and reuses the message it finds instead of posting again. ``chat.update`` is
idempotent by nature. A delivery records ``<channel>:<ts>`` as its ``external_ref``.

The bot must be a member of the conversation (``not_in_channel`` is a permanent failure with
that reason) and have ``chat:write``; finding a lost post needs ``channels:history`` (or
``groups:history``) — without it, a retry after a lost answer may post twice.
"""

from __future__ import annotations

import json
import re
import uuid

from integrations.adapters.base import PushResult, adapter_for
from notifications.channels.base import ChannelGate, ChannelType, Sent
from notifications.channels.slack import payload

# Slack conversation IDs: C (public channel), G (private channel / group), D (direct message).
CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
ENTITY = "messages"


class ChannelUnusable(Exception):
    """The channel's configuration cannot work (its integration is gone): permanent."""

    retryable = False


class SlackBot(ChannelType):
    type = "slack_bot"
    default_rate = (1, 1.0)  # chat.postMessage: about one message per second per channel
    secret_fields = ()  # the token is the integration's credential, kept by credentials/

    def clean(self, data: dict, *, channel=None, tenant=None):
        errors, public = {}, {}
        if "integration" in data or channel is None:
            integration, error = _integration(data.get("integration"), tenant)
            if error:
                errors["integration"] = error
            else:
                public["integration"] = integration
        if "conversation" in data or channel is None:
            conversation = str(data.get("conversation") or "").strip()
            if not conversation:
                errors["conversation"] = "The Slack conversation ID is required (e.g. C06K1M3P5R7)."
            elif not CONVERSATION_ID.match(conversation):
                errors["conversation"] = (
                    "A Slack conversation ID: C…, G… or D… followed by letters and digits "
                    "(channel details → About, at the bottom) — not a #name."
                )
            else:
                public["conversation"] = conversation
        return public, {}, errors

    def hint(self, public: dict, secret: dict) -> str:
        integration = public.get("integration")
        where = public.get("conversation") or ""
        return f"{integration.name} → {where}" if integration is not None else where

    def render(self, message: dict, delivery=None) -> dict:
        return payload(message)

    def send(self, channel, delivery, secrets: dict) -> Sent:
        adapter = self._adapter(channel)
        ChannelGate(channel, self).acquire("send")
        body = self.render(delivery.message, delivery)
        original = _original_alert(delivery) if delivery.kind == "resolved" else ""
        if original:
            # Edit the alert into its resolved form, then say so in its thread.
            adapter.update(original, body, idempotency_key=str(delivery.message_id))
            channel_id, _sep, ts = original.partition(":")
            posted = self._post(adapter, delivery, {**body, "channel": channel_id, "thread_ts": ts})
            return _sent(posted, updated=original)
        return _sent(self._post(adapter, delivery, {**body, "channel": channel.conversation}))

    @staticmethod
    def _adapter(channel):

        if channel.integration_id is None or channel.integration is None:
            raise ChannelUnusable(
                "the Slack integration of this channel was deleted: choose another one"
            )
        return adapter_for(channel.integration, ENTITY)

    @staticmethod
    def _post(adapter, delivery, payload: dict):
        key = str(delivery.message_id)
        if delivery.attempts > 1:  # an earlier attempt may have posted before it died
            found = adapter.find_created(key, payload=payload)
            if found is not None:
                return PushResult(external_id=adapter.external_id(found), record=found)
        return adapter.create(payload, idempotency_key=key)


def _integration(value, tenant):
    from integrations.models import Integration

    if value in (None, ""):
        return None, "Choose the connected Slack integration whose bot posts."
    if isinstance(value, Integration):
        integration = value
    else:
        try:
            integration = Integration.objects.filter(pk=uuid.UUID(str(value))).first()
        except ValueError:
            integration = None
    if integration is None or (tenant is not None and integration.tenant_id != tenant.pk):
        return None, "No such integration."
    if integration.provider != "slack":
        return None, "This integration is not a Slack integration."
    return integration, None


def _original_alert(delivery) -> str:
    """``<channel>:<ts>`` of the alert this resolution answers, if it went to this channel."""
    from notifications.models import Delivery

    if delivery.incident_id is None:
        return ""
    found = (
        Delivery.objects.filter(
            incident_id=delivery.incident_id,
            channel_id=delivery.channel_id,
            kind=Delivery.Kind.ALERT,
            status=Delivery.Status.DELIVERED,
        )
        .exclude(external_ref="")
        .order_by("-id")
        .values_list("external_ref", flat=True)
        .first()
    )
    return found or ""


def _sent(result, *, updated: str = "") -> Sent:
    answer = {"ok": True, "message": result.external_id}
    if updated:
        answer["updated"] = updated
    return Sent(200, json.dumps(answer), external_ref=result.external_id)
