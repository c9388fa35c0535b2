"""How an inbound run stops early, and the names a run gives to HTTP failures.

:class:`SyncFailure` fails the run with a stable code; :class:`Deferred` stops it to continue
from the checkpoint later. A run's own error code for an HTTP failure is ``http_<status>``
(else the client's code), and its message carries the start of the response body.
"""

from __future__ import annotations

from castiel.http.errors import OutboundError

# The run's error code when the record store (Cosmos DB) stays unreachable past the retries.
STORE_UNAVAILABLE = "record_store_unavailable"


class SyncFailure(Exception):
    """The run cannot succeed as configured; recorded on the run with a stable code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Deferred(Exception):
    """Stop now and continue from the checkpoint after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str):
        super().__init__(reason)
        self.delay = delay


def outbound_code(exc: OutboundError) -> str:
    status = getattr(exc, "status", None)
    return f"http_{status}" if status else exc.code.lower()


def outbound_message(exc: OutboundError) -> str:
    excerpt = getattr(exc, "body_excerpt", "")
    message = str(exc)
    if excerpt:
        message += f" — {excerpt[:200]}"
    return message
