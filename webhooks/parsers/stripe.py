"""Stripe events: ``{"id": "evt_…", "type": "customer.updated", "created": …,
"data": {"object": {…}}}``.

``data.object`` is a full snapshot of the object at the time of the event, so Stripe events
are complete (a direct upsert is possible); ``*.deleted`` events delete.
"""

from __future__ import annotations

from webhooks.parsers.base import (
    Delivery,
    NormalisedEvent,
    ParseError,
    catalogue_entity,
    parse_time,
)

PROVIDER = "stripe"


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    body = delivery.body
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ParseError("not a Stripe event (no type)")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise ParseError("Stripe event without data.object")
    event_type = body["type"]
    return [
        NormalisedEvent(
            provider=PROVIDER,
            type=event_type,
            entity_type=catalogue_entity(
                PROVIDER, event_type, str(obj.get("object") or event_type.split(".")[0])
            ),
            external_id=str(obj.get("id") or ""),
            payload=obj,
            occurred_at=parse_time(body.get("created")),
            complete=True,
            deleted=event_type.endswith(".deleted") or obj.get("deleted") is True,
            event_id=str(body.get("id") or ""),
        )
    ]
