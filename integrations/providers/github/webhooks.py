"""GitHub webhook events, keyed as the GitHub adapter keys records.

The webhooks app's parser (``webhooks.parsers.github``) reads the events; this wraps it and
names an ``issues`` event's record ``owner/repo#number`` (the adapter's key: every REST call
on an issue needs its repository and number) instead of the issue's global ``id``, so an
``issues.deleted`` event removes the very record a pull stored. Everything else is the
webhooks parser's (``push`` names the repository by its ``id``, as the adapter does).

Registered as the ``github`` parser in ``webhooks/parsers/__init__.py``.
"""

from __future__ import annotations

import dataclasses

from webhooks.parsers import github as events
from webhooks.parsers.base import Delivery, NormalisedEvent

from .adapter import issue_key


def parse(delivery: Delivery) -> list[NormalisedEvent]:
    parsed = events.parse(delivery)
    if delivery.header("X-GitHub-Event") != "issues":
        return parsed
    keyed = []
    for event in parsed:
        key = issue_key(event.payload) if event.payload else None
        keyed.append(dataclasses.replace(event, external_id=key) if key else event)
    return keyed
