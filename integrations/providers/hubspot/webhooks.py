"""HubSpot v3 webhook events: a JSON array (a batch of up to 100 events) per delivery.

Each item: ``eventId``, ``subscriptionType`` (``contact.creation``, ``company.deletion`` …),
``objectId``, ``occurredAt`` (epoch ms), ``propertyName``/``propertyValue`` for property
changes. Events carry ids, not records, so they are notices (not complete: the owning sync
task fetches what changed); ``*.deletion`` events delete. Only the subscription types in
:data:`EVENTS` name a record; others are parsed, stored and not acted on. The signature is the
``hubspot`` scheme's (``X-HubSpot-Signature-v3``).
"""

from __future__ import annotations

from integrations.adapters.normalize import parse_timestamp
from integrations.webhook_events import Delivery, Event, EventTable, NormalisedEvent, ParseError

# The folder name is the slug (a copied folder names its own events).
PROVIDER = __package__.rsplit(".", 1)[-1]
OBJECT_ID = "objectId"

EVENTS = EventTable(
    Event("contact.creation", "contacts", id=OBJECT_ID),
    Event("contact.propertyChange", "contacts", id=OBJECT_ID),
    Event("contact.deletion", "contacts", id=OBJECT_ID, deleted=True),
    Event("contact.restore", "contacts", id=OBJECT_ID),
    Event("contact.merge", "contacts", id=OBJECT_ID),
    Event("company.creation", "companies", id=OBJECT_ID),
    Event("company.propertyChange", "companies", id=OBJECT_ID),
    Event("company.deletion", "companies", id=OBJECT_ID, deleted=True),
    Event("company.restore", "companies", id=OBJECT_ID),
    Event("company.merge", "companies", id=OBJECT_ID),
)


@EVENTS.parser
def parse(delivery: Delivery) -> list[NormalisedEvent]:
    body = delivery.body
    if isinstance(body, dict):
        body = [body]  # tolerate a single event
    if not isinstance(body, list):
        raise ParseError("a HubSpot webhook delivery is a JSON array of events")
    events = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("subscriptionType"), str):
            raise ParseError("HubSpot event without a subscriptionType")
        kind = item["subscriptionType"]
        row = EVENTS.row(kind)
        events.append(
            NormalisedEvent(
                provider=PROVIDER,
                type=kind,
                entity_type=row.entity_type if row is not None else "",
                external_id=row.record_id(item) if row is not None else "",
                payload=item,
                occurred_at=parse_timestamp(item.get("occurredAt")),
                complete=False,
                deleted=row.deleted if row is not None else kind.endswith(".deletion"),
                event_id=str(item.get("eventId") or ""),
            )
        )
    return events
