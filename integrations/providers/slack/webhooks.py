"""Slack Events API: ``event_callback`` envelopes (``event_id``, ``event.type``).

``url_verification`` is the handshake, answered by the ``slack`` scheme before anything is
stored for processing: it yields no event here. What each event in :data:`EVENTS` carries:

* ``user_change`` / ``team_join``: ``event.user`` is the whole user object → a complete
  payload, upserted as pulled;
* ``channel_created`` / ``channel_rename``: ``event.channel`` is a small subset (id, name,
  created …) → a notice: the conversations task fetches the channel;
* ``channel_archive`` / ``channel_unarchive``: ``event.channel`` is the id → a notice;
* ``channel_deleted``: ``event.channel`` is the id → the record is deleted.

Other events (messages, reactions …) name no record and are stored but not acted on.
"""

from __future__ import annotations

from integrations.adapters.normalize import parse_timestamp
from integrations.webhook_events import Delivery, Event, EventTable, NormalisedEvent, ParseError

# The folder name is the slug (a copied folder names its own events).
PROVIDER = __package__.rsplit(".", 1)[-1]


def _channel_id(channel) -> str | None:
    """``event.channel``: the channel object (created, rename) or its id (the others)."""
    if isinstance(channel, dict):
        channel = channel.get("id")
    return str(channel) if channel else None


USER = {"entity_type": "users", "id": "event.user.id"}
CHANNEL = {"entity_type": "conversations", "id": "event.channel", "key": _channel_id}

EVENTS = EventTable(
    Event("user_change", **USER, complete=True),
    Event("team_join", **USER, complete=True),
    Event("channel_created", **CHANNEL),
    Event("channel_rename", **CHANNEL),
    Event("channel_archive", **CHANNEL),
    Event("channel_unarchive", **CHANNEL),
    Event("channel_deleted", **CHANNEL, deleted=True),
)


@EVENTS.parser
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
    row = EVENTS.row(kind)
    external_id, payload = "", event
    if row is not None:
        external_id = row.record_id(body)
        record = event.get("user") if row.entity_type == "users" else event.get("channel")
        if isinstance(record, dict):
            payload = record
        elif external_id and row.entity_type == "conversations":
            payload = {"id": external_id}
    return [
        NormalisedEvent(
            provider=PROVIDER,
            type=kind,
            entity_type=row.entity_type if row is not None else "",
            external_id=external_id,
            payload=payload,
            occurred_at=parse_timestamp(body.get("event_time") or event.get("event_ts")),
            complete=row is not None and row.complete and bool(external_id),
            deleted=row is not None and row.deleted,
            event_id=str(body.get("event_id") or ""),
        )
    ]
