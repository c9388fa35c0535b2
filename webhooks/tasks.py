"""django-q2 entry points (thin: the work is in services)."""

from __future__ import annotations

from webhooks import processing


def process_event(event_id: str) -> str | None:
    return processing.event_process(event_id=event_id)


def requeue_due() -> int:
    return processing.events_requeue_due()


def purge_events() -> int:
    return processing.events_purge()
