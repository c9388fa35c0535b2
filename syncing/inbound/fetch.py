"""Reading one page from the provider, with the run's retries.

Retryable failures (timeouts, 429, 5xx, a malformed page) are retried after the backoff of
``waiting.py``; the rate limiter's "wait" (nothing was sent) defers the run without counting
an attempt; a permanent failure or an invalid cursor ends the run.
"""

from __future__ import annotations

from castiel.http.errors import DEFERRED, PERMANENT, REFUSED, OutboundError, next_step
from integrations.adapters.base import AdapterError, InvalidCursor
from syncing.inbound.errors import Deferred, SyncFailure, outbound_code, outbound_message
from syncing.inbound.preflight import Plan
from syncing.inbound.waiting import Waiting


def fetch_page(plan: Plan, waiting: Waiting, first=None):
    """The page at ``plan.cursor`` (renewing the lease before every request). ``first``: the
    first attempt made already (``read_ahead.py``), as a callable that returns its page or
    raises its error."""
    attempt = 0
    while True:
        attempt += 1
        waiting.renew()
        try:
            if first is not None:
                attempt_made, first = first, None
                return attempt_made()
            return plan.adapter.fetch_page(plan.cursor, since=plan.since)
        except InvalidCursor as exc:
            raise SyncFailure("invalid_cursor", str(exc)) from None
        except AdapterError as exc:
            if next_step(exc) == PERMANENT:
                raise
            reason, code, retry_after = str(exc), exc.code, None
        except OutboundError as exc:
            step = next_step(exc)  # the classification the push worker uses too
            if step == PERMANENT:
                raise
            if step in (DEFERRED, REFUSED):
                # The rate limiter said wait (nothing was sent): not a failed attempt.
                # The gate already waited what is reasonable in-process.
                raise Deferred(exc.retry_after or 1.0, f"rate limiter: {exc}") from None
            reason, code, retry_after = outbound_message(exc), outbound_code(exc), exc.retry_after
        waiting.retry(attempt, code, reason, retry_after)
