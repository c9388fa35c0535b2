"""A dependency that cannot be reached right now: not a bug, so never a 500.

Apps raise subclasses (e.g. ``syncing.records.stores.base.RecordStoreUnavailable``); the API's error
handler answers any of them 503 with ``Retry-After`` and the subclass's stable ``code``,
without importing the app that raised it.
"""

from __future__ import annotations


class TemporarilyUnavailable(Exception):
    code = "service_unavailable"
    message = "A service Castiel depends on is unavailable right now; retry after the delay."
    retryable = True
    # What clients are told to wait (Retry-After) when the dependency gave no hint of its own.
    default_retry_after = 5
    retry_after: float | None = None
    reason = ""

    def details(self) -> dict:
        """Extra fields of the API error body (names, never secrets)."""
        return {}
