"""Helpers for the change-feed tests."""

from __future__ import annotations

import time

from django.db.models import Max

from syncing.models import RecordChange
from syncing.records import feed


def settle(timeout: float = 60) -> None:
    """Wait until the feed's horizon has passed every change written so far.

    Immediate on SQLite and on a quiet PostgreSQL. On a PostgreSQL server shared with other
    work, a transaction left open elsewhere holds the horizon back — as in production, where
    the feed then waits for it (castiel_change_feed_horizon_lag_seconds)."""
    newest = RecordChange.objects.aggregate(newest=Max("txid"))["newest"] or 0
    deadline = time.monotonic() + timeout
    while feed.horizon().txid < newest and time.monotonic() < deadline:
        time.sleep(0.05)
