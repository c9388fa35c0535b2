"""The normalised event every parser produces, whatever the provider's payload looks like."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ParseError(Exception):
    """The stored payload cannot be understood; retrying cannot help (the event fails)."""


@dataclass(frozen=True)
class NormalisedEvent:
    """One change a provider told us about.

    ``type`` is the provider's event name (``issues.opened``, ``customer.updated``);
    ``entity_type``/``external_id`` name the changed record in the provider; ``payload`` is
    the record as sent; ``complete`` says the payload is the whole record (a direct upsert is
    possible) rather than a notice that something changed (fetch it); ``deleted`` says the
    record is gone.
    """

    provider: str
    type: str
    entity_type: str = ""
    external_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    complete: bool = False
    deleted: bool = False
    event_id: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "type": self.type,
            "entity_type": self.entity_type,
            "external_id": self.external_id,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "complete": self.complete,
            "deleted": self.deleted,
            "event_id": self.event_id,
        }


def catalogue_entity(provider: str, event_type: str, fallback: str) -> str:
    """The entity type the provider catalogue maps this event to (``webhook_events``), so a
    webhook names records exactly as sync tasks do (``issues``, ``customers``)."""
    from integrations.providers import registry

    try:
        events = registry.get(provider).webhook_events
    except registry.UnknownProvider:
        return fallback
    return events.get(event_type) or events.get(event_type.split(".", 1)[0]) or fallback


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text or a Unix time (seconds, or milliseconds when it is that large)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return parse_time(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class Delivery:
    """What a parser reads: the stored body (parsed) and headers."""

    body: Any
    headers: dict[str, str]
    config: dict

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None
