"""What a webhook parser reads (:class:`Delivery`) and produces (:class:`NormalisedEvent`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass(frozen=True)
class Delivery:
    """What a parser reads: the stored body (parsed) and headers, and the registration's
    ``parser_config``."""

    body: Any
    headers: dict[str, str]
    config: dict

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


Parser = Callable[[Delivery], list[NormalisedEvent]]
