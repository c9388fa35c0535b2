"""Routing: normalised events → named follow-up actions, run from an action registry.

Webhooks only decide *which* follow-up an event needs; other apps do the work. They register
their actions by name in their ``AppConfig.ready()``::

    from webhooks.routing import register_action
    register_action("sync.upsert_record", upsert_from_webhook)

An action is ``fn(event: NormalisedEvent, context: ActionContext) -> dict | None``; the
returned dict is stored on the audit row. Actions must be idempotent (a retried or replayed
event runs them again). Raise an exception whose ``retryable`` attribute is False (or
:class:`PermanentActionError`) when retrying cannot help; anything else is retried with
backoff.

The routing table maps (parser, event-type pattern) to a list of action names, or to
:data:`AUTO`; its defaults (:data:`DEFAULT_ROUTES`) come from each provider's event table
(``integrations/providers/<slug>/webhooks.py``), and the generic parser routes ``*``. AUTO
picks by the event's shape (nothing when the event names no record): deleted →
``sync.delete_record``; a complete payload → ``sync.upsert_record``; otherwise
``sync.fetch_entity`` (a targeted inbound sync of the changed entity); then
``push.evaluate_rules`` (rule-triggered outbound push). A registration's own ``routes``
are consulted first, then the defaults; within each, the most specific matching pattern
wins (an exact type, else the longest pattern), because a JSON object's key order is not
kept by PostgreSQL's jsonb. An empty list means "ignore".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from castiel.observability.logging import get_logger
from integrations.webhook_events import (
    AUTO,
    DELETE_RECORD,
    EVALUATE_RULES,
    FETCH_ENTITY,
    PARSERS,
    UPSERT_RECORD,
    NormalisedEvent,
    Route,
    default_routes,
)

log = get_logger(__name__)

__all__ = [
    "AUTO",
    "DEFAULT_ROUTES",
    "DELETE_RECORD",
    "EVALUATE_RULES",
    "FETCH_ENTITY",
    "UPSERT_RECORD",
    "ActionContext",
    "ActionNotRegistered",
    "PermanentActionError",
    "actions_for",
    "register_action",
    "run_action",
]


class _DefaultRoutes(Mapping):
    """Parser slug → [(event type pattern, actions or AUTO)], derived from each provider's
    event table (``integrations/providers/<slug>/webhooks.py``) and the generic parser's
    ``*``: only what a provider's table declares is routed; everything else is stored,
    parsed and marked ignored. Read on each access, so a provider registered later counts."""

    def __getitem__(self, parser: str) -> list[Route]:
        if parser not in PARSERS:
            raise KeyError(parser)
        return default_routes(parser)

    def __iter__(self) -> Iterator[str]:
        return iter(PARSERS)

    def __len__(self) -> int:
        return len(PARSERS)


DEFAULT_ROUTES: Mapping[str, list[Route]] = _DefaultRoutes()


@dataclass(frozen=True)
class ActionContext:
    tenant_id: str
    integration_id: str | None
    registration_id: str
    webhook_event_id: str
    correlation_id: str
    replay: bool = False


Action = Callable[[NormalisedEvent, ActionContext], "dict | None"]

_actions: dict[str, Action] = {}


class ActionNotRegistered(Exception):
    retryable = False


class PermanentActionError(Exception):
    """Raise from an action when retrying cannot help (the event is marked failed)."""

    retryable = False


def register_action(name: str, fn: Action) -> None:
    """Register (or replace) the function behind an action name."""
    if not name or not callable(fn):
        raise ValueError("register_action needs a name and a callable")
    previous = _actions.get(name)
    if previous is not None and previous is not fn:
        log.warning("webhooks.action_replaced", action=name)
    _actions[name] = fn


def unregister_action(name: str) -> None:
    _actions.pop(name, None)


def registered_actions() -> dict[str, Action]:
    return dict(_actions)


def auto_actions(event: NormalisedEvent) -> list[str]:
    if not event.external_id:  # names no record: there is nothing to sync or push
        return []
    if event.deleted:
        first = DELETE_RECORD
    elif event.complete:
        first = UPSERT_RECORD
    else:
        first = FETCH_ENTITY
    return [first, EVALUATE_RULES]


def validate_routes(routes) -> str | None:
    if not isinstance(routes, dict):
        return 'An object {"<event type pattern>": ["<action>", …] or "auto"}.'
    for pattern, actions in routes.items():
        if actions == AUTO:
            continue
        if not isinstance(actions, list) or not all(isinstance(a, str) and a for a in actions):
            return f'{pattern!r}: a list of action names, or "auto".'
    return None


def actions_for(event: NormalisedEvent, *, parser: str, overrides: dict | None = None) -> list[str]:
    """The action names an event routes to ([] = nothing to do)."""
    for table in ((overrides or {}).items(), default_routes(parser)):
        matching = [(p, a) for p, a in table if fnmatchcase(event.type, p)]
        if matching:
            _, actions = max(matching, key=lambda item: (item[0] == event.type, len(item[0])))
            return auto_actions(event) if actions == AUTO else list(actions)
    return []


def run_action(name: str, event: NormalisedEvent, context: ActionContext) -> dict | None:
    fn = _actions.get(name)
    if fn is None:
        raise ActionNotRegistered(f"no action registered as {name!r}")
    return fn(event, context)
