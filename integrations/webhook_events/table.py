"""A provider's webhook event table: each event it sends, and what that event means.

The Zulip ``EVENT_FUNCTION_MAPPER`` idea, as data. One table per provider, in its folder
(``integrations/providers/<slug>/webhooks.py``), next to the parser that reads the provider's
envelope. Everything else about the provider's events is derived from it:

* the catalogue's ``ProviderInfo.webhook_events`` (event name → entity type),
* the default routes of ``webhooks/routing.py`` (event type pattern → actions),
* the provider contract tests (``tests/integrations``): every webhook fixture parses to the
  rows it names.

A row (:class:`Event`) says which normalised event types it matches (``types``, an fnmatch
pattern; the event's ``name`` by default), the entity type it changes, where the record's id
is in the delivery (``id``, a dotted path), whether the event carries the whole record
(``complete``) or deletes it (``deleted``), and its routing (``actions``: :data:`AUTO` picks
by the event's shape). Where several rows match a type the most specific wins (an exact
type, else the longest pattern), as in routing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from integrations.jsonpath import get_path
from integrations.webhook_events.base import Parser

# Follow-up actions (implemented by other apps, registered by name in webhooks.routing).
UPSERT_RECORD = "sync.upsert_record"
DELETE_RECORD = "sync.delete_record"
FETCH_ENTITY = "sync.fetch_entity"
EVALUATE_RULES = "push.evaluate_rules"
# Pick by the event's shape: nothing when it names no record; else delete, upsert (complete)
# or fetch; then evaluate push rules (webhooks.routing.auto_actions).
AUTO = "auto"

Route = tuple[str, Any]  # (event type pattern, AUTO or a tuple of action names)


@dataclass(frozen=True)
class Event:
    """One event (or family of event types) a provider sends."""

    # The provider's name for the event as its parser reads it (GitHub's X-GitHub-Event,
    # Stripe's type, HubSpot's subscriptionType, Slack's event.type): what the catalogue
    # lists. "" for a family the catalogue does not list.
    name: str
    # The catalogue entity type it changes; "" leaves it to the parser (a family).
    entity_type: str
    # Dotted path, in the delivery (one item of a batch), to the id of the record it names.
    id: str = ""
    # The event carries the whole record (upsert it) rather than a notice (fetch it).
    complete: bool = False
    # The record is gone.
    deleted: bool = False
    # The normalised event types this row matches (fnmatch); default: exactly ``name``.
    types: str = ""
    # Routing: AUTO, or the action names to run in order (an empty tuple ignores).
    actions: str | tuple[str, ...] = AUTO
    # The record id from the value at ``id`` (GitHub: an issue's owner/repo#number), when it
    # is not that value as text.
    key: Callable[[Any], str | None] | None = None

    @property
    def pattern(self) -> str:
        return self.types or self.name

    def record_id(self, item: Any) -> str:
        """The external id of the record this event names in ``item`` ("" when none)."""
        value = get_path(item, self.id) if self.id else None
        if self.key is not None:
            return (self.key(value) if value is not None else None) or ""
        if value is None or isinstance(value, dict | list | bool) or value == "":
            return ""
        return str(value)


class EventTable:
    """The rows of one provider, and (``@EVENTS.parser``) the function that reads its
    deliveries."""

    def __init__(self, *rows: Event):
        self.rows = rows
        self.parse: Parser | None = None
        entities: dict[str, str] = {}
        for row in rows:
            if row.actions != AUTO and not isinstance(row.actions, tuple):
                raise TypeError(f"{row.pattern}: actions must be AUTO or a tuple of names")
            if row.name and row.entity_type:
                if entities.setdefault(row.name, row.entity_type) != row.entity_type:
                    raise ValueError(f"event {row.name!r} names two entity types")

    def parser(self, fn: Parser) -> Parser:
        """Decorator: ``fn(delivery) -> list[NormalisedEvent]`` reads this provider's
        deliveries (the registration's parser named by the provider's slug)."""
        self.parse = fn
        return fn

    def row(self, event_type: str) -> Event | None:
        """The row an event type matches (the most specific), or None (not acted on)."""
        matching = [row for row in self.rows if fnmatchcase(event_type, row.pattern)]
        if not matching:
            return None
        return max(matching, key=lambda row: (row.pattern == event_type, len(row.pattern)))

    def entity_types(self) -> dict[str, str]:
        """The catalogue's ``webhook_events``: event name → entity type."""
        return {row.name: row.entity_type for row in self.rows if row.name and row.entity_type}

    def routes(self) -> list[Route]:
        """The default routes: (event type pattern, actions) per row."""
        routes: list[Route] = []
        for row in self.rows:
            route = (row.pattern, row.actions)
            if route not in routes:
                routes.append(route)
        return routes
