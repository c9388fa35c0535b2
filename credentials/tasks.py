"""django-q2 entry points (thin: the work is in credentials.maintenance / refresh)."""

from __future__ import annotations

from credentials.maintenance import refresh_due


def refresh_due_credentials() -> dict:
    return refresh_due()
