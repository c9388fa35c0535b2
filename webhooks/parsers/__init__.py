"""Event parsers by slug, for the webhooks app: the providers' own (each provider folder's
``webhooks.py``, found through the catalogue) and ``generic`` — all in
:mod:`integrations.webhook_events`. Nothing is registered here: adding a provider folder with
an event table adds its parser.
"""

from integrations.webhook_events import (
    CONFIG_VALIDATORS,
    PARSERS,
    Delivery,
    NormalisedEvent,
    ParseError,
    get_parser,
)

__all__ = [
    "CONFIG_VALIDATORS",
    "PARSERS",
    "Delivery",
    "NormalisedEvent",
    "ParseError",
    "get_parser",
]
