"""Event parsers: stored delivery → normalised events. One module per provider, one registry.

GitHub (issues, push), Stripe (every event; routed: customer.*), HubSpot and Slack (their
parsers live in their provider folders) and a generic JSON parser configured with dotted
paths. Adding a provider is adding a module with ``parse(delivery)``
and a line below.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from webhooks.parsers import generic, stripe
from webhooks.parsers.base import Delivery, NormalisedEvent, ParseError


def _provider_parser(slug: str) -> Callable[[Delivery], list[NormalisedEvent]]:
    """The parser kept in a provider's folder (``integrations/providers/<slug>/webhooks.py``),
    imported on first use (it imports this package)."""

    def parse(delivery: Delivery) -> list[NormalisedEvent]:
        return import_module(f"integrations.providers.{slug}.webhooks").parse(delivery)

    return parse


PARSERS: dict[str, Callable[[Delivery], list[NormalisedEvent]]] = {
    # webhooks.parsers.github, with issues keyed as the GitHub adapter keys them.
    "github": _provider_parser("github"),
    "stripe": stripe.parse,
    "generic": generic.parse,
    "hubspot": _provider_parser("hubspot"),
    "slack": _provider_parser("slack"),
}

CONFIG_VALIDATORS = {"generic": generic.validate_config}


def get_parser(slug: str):
    try:
        return PARSERS[slug]
    except KeyError:
        raise ParseError(f"unknown parser {slug!r}") from None


__all__ = ["PARSERS", "Delivery", "NormalisedEvent", "ParseError", "get_parser"]
