"""Stripe webhook events: ``{"id": "evt_…", "type": "customer.updated", "created": …,
"data": {"object": {…}}}``.

``data.object`` is a full snapshot of the object at the time of the event, so Stripe events
are complete (a direct upsert is possible); ``*.deleted`` events, and deleted objects, delete.
The customer events name the ``customers`` the adapter pulls; the other ``customer.*`` events
(``customer.subscription.updated``, ``customer.source.created`` …) carry objects of their own,
named by ``data.object.object``, and are routed the same way (no Stripe task owns those
entity types). Everything else is parsed, stored and not acted on.
"""

from __future__ import annotations

from integrations.adapters.normalize import parse_timestamp
from integrations.webhook_events import Delivery, Event, EventTable, NormalisedEvent, ParseError

# The folder name is the slug (a copied folder names its own events).
PROVIDER = __package__.rsplit(".", 1)[-1]
OBJECT_ID = "data.object.id"

EVENTS = EventTable(
    Event("customer.created", "customers", id=OBJECT_ID, complete=True),
    Event("customer.updated", "customers", id=OBJECT_ID, complete=True),
    Event("customer.deleted", "customers", id=OBJECT_ID, complete=True, deleted=True),
    # Families the catalogue does not list: the object names its own entity type.
    Event("", "", id=OBJECT_ID, types="customer.*", complete=True),
    Event("", "", id=OBJECT_ID, types="customer.*.deleted", complete=True, deleted=True),
)


@EVENTS.parser
def parse(delivery: Delivery) -> list[NormalisedEvent]:
    body = delivery.body
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ParseError("not a Stripe event (no type)")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise ParseError("Stripe event without data.object")
    event_type = body["type"]
    row = EVENTS.row(event_type)
    if row is None:  # not acted on: described as Stripe describes it
        row = Event("", "", id=OBJECT_ID, complete=True, deleted=event_type.endswith(".deleted"))
    return [
        NormalisedEvent(
            provider=PROVIDER,
            type=event_type,
            entity_type=row.entity_type or str(obj.get("object") or event_type.split(".")[0]),
            external_id=row.record_id(body),
            payload=obj,
            occurred_at=parse_timestamp(body.get("created")),
            complete=row.complete,
            deleted=row.deleted or obj.get("deleted") is True,
            event_id=str(body.get("id") or ""),
        )
    ]
