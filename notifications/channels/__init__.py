"""The channel types: one small adapter per kind of destination (see ``base.ChannelType``)."""

from __future__ import annotations

from notifications.channels.base import ChannelType, Sent
from notifications.channels.email import Email
from notifications.channels.slack import SlackWebhook
from notifications.channels.slack_bot import SlackBot
from notifications.channels.teams import TeamsWorkflow
from notifications.channels.webhook import SignedWebhook

TYPES: dict[str, ChannelType] = {
    t.type: t for t in (SlackWebhook(), SlackBot(), TeamsWorkflow(), Email(), SignedWebhook())
}


def for_type(name: str) -> ChannelType:
    return TYPES[name]


__all__ = ["TYPES", "ChannelType", "Sent", "for_type"]
