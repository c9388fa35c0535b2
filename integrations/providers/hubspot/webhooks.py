"""HubSpot v3 webhook events: a JSON array (a batch of up to 100 events) per delivery.

Each item: ``eventId``, ``subscriptionType`` (``contact.creation``, ``company.deletion`` …),
``objectId``, ``occurredAt`` (epoch ms), ``propertyName``/``propertyValue`` for property
changes. Events carry ids, not records, so they are notices (``complete=False``: the owning
sync task fetches what changed); ``*.deletion`` events delete. Only the subscription types
listed in the catalogue's ``webhook_events`` name a record; others are parsed and ignored.

Registered as the ``hubspot`` parser in ``webhooks/parsers/__init__.py`` (the signature is the
``hubspot`` scheme's: ``X-HubSpot-Signature-v3``).
"""

from __future__ import annotations

from webhooks.parsers.base import Delivery, NormalisedEvent, ParseError, parse_time

PROVIDER = "hubspot"


def _events_map() -> dict[str, str]:
    from integrations.providers import registry

    return registry.get(PROVIDER).webhook_events


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    body = delivery.body
    if isinstance(body, dict):
        body = [body]  # tolerate a single event
    if not isinstance(body, list):
        raise ParseError("a HubSpot webhook delivery is a JSON array of events")
    mapping = _events_map()
    events = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("subscriptionType"), str):
            raise ParseError("HubSpot event without a subscriptionType")
        kind = item["subscriptionType"]
        entity = mapping.get(kind, "")
        object_id = item.get("objectId")
        events.append(
            NormalisedEvent(
                provider=PROVIDER,
                type=kind,
                entity_type=entity,
                external_id=str(object_id) if entity and object_id is not None else "",
                payload=item,
                occurred_at=parse_time(item.get("occurredAt")),
                complete=False,
                deleted=kind.endswith(".deletion"),
                event_id=str(item.get("eventId") or ""),
            )
        )
    return events
