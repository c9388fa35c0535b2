"""Webhook events: what providers send, read into normalised events, and what each calls for.

Parsing belongs to the providers. A provider folder's ``webhooks.py`` holds its event table
(:class:`EventTable`) and, decorated ``@EVENTS.parser``, the function that reads its
deliveries; its ``PROVIDER`` declares the table (``ProviderInfo(webhooks=EVENTS)``). The
``generic`` parser (:mod:`.generic`) reads any other JSON provider from dotted paths.

The webhooks app receives, verifies and stores deliveries, then looks parsers and default
routes up here by the registration's parser slug — a provider's slug or ``generic`` — so a
copied provider folder is a parser too, with nothing registered by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from integrations.webhook_events import generic
from integrations.webhook_events.base import Delivery, NormalisedEvent, ParseError, Parser
from integrations.webhook_events.table import (
    AUTO,
    DELETE_RECORD,
    EVALUATE_RULES,
    FETCH_ENTITY,
    UPSERT_RECORD,
    Event,
    EventTable,
    Route,
)

GENERIC = generic.PROVIDER
# Parser options checked when a registration is saved, by parser slug.
CONFIG_VALIDATORS = {GENERIC: generic.validate_config}


def _table(slug: str) -> EventTable | None:
    from integrations.providers import registry

    try:
        return registry.get(slug).webhooks
    except registry.UnknownProvider:
        return None


class _Parsers(Mapping):
    """Parser slug → ``parse(delivery)``: ``generic`` and every provider with an event table,
    read from the provider registry on each access (a provider registered later is seen)."""

    def __getitem__(self, slug: str) -> Parser:
        if slug == GENERIC:
            return generic.parse
        table = _table(slug)
        if table is None or table.parse is None:
            raise KeyError(slug)
        return table.parse

    def __iter__(self) -> Iterator[str]:
        from integrations.providers import registry

        yield GENERIC
        for provider in registry.all_providers():
            if provider.webhooks is not None and provider.webhooks.parse is not None:
                yield provider.slug

    def __len__(self) -> int:
        return sum(1 for _ in self)


PARSERS: Mapping[str, Parser] = _Parsers()


def get_parser(slug: str) -> Parser:
    try:
        return PARSERS[slug]
    except KeyError:
        raise ParseError(f"unknown parser {slug!r}") from None


def default_routes(slug: str) -> list[Route]:
    """The routes of the events a parser's provider declares ([] for an unknown slug)."""
    if slug == GENERIC:
        return list(generic.ROUTES)
    table = _table(slug)
    return table.routes() if table is not None else []


__all__ = [
    "AUTO",
    "CONFIG_VALIDATORS",
    "DELETE_RECORD",
    "EVALUATE_RULES",
    "FETCH_ENTITY",
    "PARSERS",
    "UPSERT_RECORD",
    "Delivery",
    "Event",
    "EventTable",
    "NormalisedEvent",
    "ParseError",
    "Parser",
    "Route",
    "default_routes",
    "get_parser",
]
