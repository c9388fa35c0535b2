"""The ``generic`` parser: any JSON provider, described by dotted paths in ``parser_config``.

Options: ``items`` (path to a list when one delivery batches several events; default: the
body is one event), and per event ``type``, ``entity_type``, ``external_id``,
``payload`` (default: the whole event), ``occurred_at``, ``event_id``. A value starting with
``=`` is a literal (``"entity_type": "=contact"``). ``complete`` (bool, default false) says
payloads are whole records; ``deleted_types`` lists shell patterns of event types that delete
(default ``*.deleted``, ``*deleted``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from integrations.adapters.normalize import parse_timestamp
from integrations.jsonpath import get_path, valid_path
from integrations.webhook_events.base import Delivery, NormalisedEvent, ParseError
from integrations.webhook_events.table import AUTO, Route

PROVIDER = "generic"
# Whatever the paths find is acted on by its shape (a registration's routes narrow it).
ROUTES: list[Route] = [("*", AUTO)]
PATH_OPTIONS = ("items", "type", "entity_type", "external_id", "payload", "occurred_at", "event_id")
OPTIONS = (*PATH_OPTIONS, "complete", "deleted_types", "provider")


def validate_config(config: dict) -> dict[str, str]:
    errors = {}
    for name in set(config) - set(OPTIONS):
        errors[name] = "Unknown option."
    for name in PATH_OPTIONS:
        value = config.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not (value.startswith("=") or valid_path(value)):
            errors[name] = "A dotted JSON path, or =literal."
    if "deleted_types" in config and not isinstance(config["deleted_types"], list):
        errors["deleted_types"] = "A list of event type patterns."
    return errors


def _value(item, spec: str | None):
    if not spec:
        return None
    if spec.startswith("="):
        return spec[1:]
    return get_path(item, spec)


def _text(value) -> str:
    return "" if value is None or isinstance(value, (dict, list)) else str(value)


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    config = delivery.config or {}
    body = delivery.body
    if body is None:
        raise ParseError("the body is not JSON")
    items = _value(body, config.get("items")) if config.get("items") else [body]
    if not isinstance(items, list):
        raise ParseError(f"{config.get('items')} is not a list")
    deleted_types = config.get("deleted_types") or ["*.deleted", "*deleted"]
    provider = str(config.get("provider") or PROVIDER)
    events = []
    for item in items:
        event_type = _text(_value(item, config.get("type", "type"))) or "event"
        payload = _value(item, config["payload"]) if config.get("payload") else item
        events.append(
            NormalisedEvent(
                provider=provider,
                type=event_type,
                entity_type=_text(_value(item, config.get("entity_type"))),
                external_id=_text(_value(item, config.get("external_id", "id"))),
                payload=payload if isinstance(payload, dict) else {"value": payload},
                occurred_at=parse_timestamp(_value(item, config.get("occurred_at"))),
                complete=bool(config.get("complete", False)),
                deleted=any(fnmatchcase(event_type, p) for p in deleted_types),
                event_id=_text(_value(item, config.get("event_id"))),
            )
        )
    return events
