"""When a sync task runs next: every ``interval_seconds``, or on a cron expression.

Cron expressions use ``croniter`` (the library django-q2 itself uses for cron schedules), in
UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

MIN_INTERVAL_SECONDS = 60


def validate_cron(expression: str) -> str | None:
    """An error message, or None when the expression is valid."""
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression (five fields, e.g. '*/15 * * * *')"
    return None


def next_run_after(task, started_at: datetime, now: datetime) -> datetime:
    if task.cron:
        return croniter(task.cron, now).get_next(datetime)
    # Anchored to the run's start so the period does not drift by the run's duration.
    candidate = started_at + timedelta(seconds=task.interval_seconds)
    return max(candidate, now)
