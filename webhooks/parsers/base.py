"""What parsers read and produce — defined in :mod:`integrations.webhook_events.base` (parsing
belongs to the providers); kept here for the webhooks app's importers."""

from integrations.adapters.normalize import parse_timestamp as parse_time
from integrations.webhook_events.base import Delivery, NormalisedEvent, ParseError

__all__ = ["Delivery", "NormalisedEvent", "ParseError", "parse_time"]
