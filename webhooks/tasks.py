"""django-q2 entry points (thin: the work is in services)."""

from __future__ import annotations

from webhooks import services


def process_event(event_id: str) -> str | None:
    return services.event_process(event_id=event_id)


def requeue_due() -> int:
    return services.events_requeue_due()


def purge_events() -> int:
    return services.events_purge()
