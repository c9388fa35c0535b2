"""Slack Events API: ``event_callback`` envelopes (``event_id``, ``event.type``).

``url_verification`` is the handshake, answered by the ``slack`` scheme before anything is
stored for processing: it yields no event here. What each catalogue event carries:

* ``user_change`` / ``team_join``: ``event.user`` is the whole user object → a complete
  payload, upserted as pulled;
* ``channel_created`` / ``channel_rename``: ``event.channel`` is a small subset (id, name,
  created …) → a notice: the conversations task fetches the channel;
* ``channel_archive`` / ``channel_unarchive``: ``event.channel`` is the id → a notice;
* ``channel_deleted``: ``event.channel`` is the id → the record is deleted.

Events not in the catalogue's ``webhook_events`` (messages, reactions …) name no record and
are stored but not acted on. Registered as the ``slack`` parser in ``webhooks/parsers``.
"""

from __future__ import annotations

from webhooks.parsers.base import Delivery, NormalisedEvent, ParseError, parse_time

PROVIDER = "slack"
COMPLETE = {"user_change", "team_join"}
DELETED = {"channel_deleted"}


def _events_map() -> dict[str, str]:
    from integrations.providers import registry

    return registry.get(PROVIDER).webhook_events


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    body = delivery.body
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ParseError("not a Slack Events API payload (no type)")
    if body["type"] == "url_verification":
        return []
    if body["type"] != "event_callback":
        return [NormalisedEvent(provider=PROVIDER, type=body["type"])]
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ParseError("event_callback without an event")
    kind = event["type"]
    entity = _events_map().get(kind, "")
    external_id, payload = "", event
    if entity == "users" and isinstance(event.get("user"), dict):
        payload = event["user"]
        external_id = str(payload.get("id") or "")
    elif entity == "conversations":
        channel = event.get("channel")
        if isinstance(channel, dict):
            payload, external_id = channel, str(channel.get("id") or "")
        elif isinstance(channel, str):
            payload, external_id = {"id": channel}, channel
    return [
        NormalisedEvent(
            provider=PROVIDER,
            type=kind,
            entity_type=entity,
            external_id=external_id,
            payload=payload,
            occurred_at=parse_time(body.get("event_time") or event.get("event_ts")),
            complete=kind in COMPLETE and bool(external_id),
            deleted=kind in DELETED,
            event_id=str(body.get("event_id") or ""),
        )
    ]
