"""Event parsers: stored delivery → normalised events. One module per provider, one registry.

GitHub (issues, push), Stripe (every event; routed: customer.*) and a generic JSON parser
configured with dotted paths. Adding a provider is adding a module with ``parse(delivery)``
and a line below.
"""

from __future__ import annotations

from collections.abc import Callable

from webhooks.parsers import generic, github, stripe
from webhooks.parsers.base import Delivery, NormalisedEvent, ParseError

PARSERS: dict[str, Callable[[Delivery], list[NormalisedEvent]]] = {
    "github": github.parse,
    "stripe": stripe.parse,
    "generic": generic.parse,
}

CONFIG_VALIDATORS = {"generic": generic.validate_config}


def get_parser(slug: str):
    try:
        return PARSERS[slug]
    except KeyError:
        raise ParseError(f"unknown parser {slug!r}") from None


__all__ = ["PARSERS", "Delivery", "NormalisedEvent", "ParseError", "get_parser"]
