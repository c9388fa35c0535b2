"""The next page, requested while PostgreSQL finishes this one.

Once a page's last statements are on their way to PostgreSQL (``castiel/db/overlap.py``), the
worker has nothing to do but wait for them, and the provider has nothing to do at all. A
:class:`ReadAhead` sends the next page's request from a helper thread at that moment and maps
the answer there (``PagePipeline.map_page``: no database, no state a page's write changes), so
the provider's answer, its JSON decoding and the page's mapping happen while PostgreSQL
writes. The worker picks the page up after the commit through
:func:`~syncing.inbound.fetch.fetch_page`, which treats what the helper got — a page or a
provider's error — as its first attempt, with the usual retries.

The helper only calls the adapter and the mapping. Whatever the adapter touches in the
database (a token refresh, a limiter's fallback) goes through the helper thread's own
connection, in its own transactions, never into the page's. Anything else going wrong in the
helper is not the provider's answer: the worker logs it and makes the request itself. No
read-ahead after the last page or after a page that says the provider's limit is exhausted;
the helper's connection is closed with the run.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connections

from castiel.http.errors import OutboundError
from castiel.observability.logging import get_logger
from integrations.adapters.base import AdapterError
from syncing.inbound.preflight import Plan

log = get_logger(__name__)


class ReadAhead:
    """At most one page requested ahead for the run of ``plan``."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._executor: ThreadPoolExecutor | None = None
        self._cursor: object = None
        self._future: Future | None = None
        self._mapped: tuple | None = None  # (page, its MappedPage), set by the helper

    def start(self, cursor) -> None:
        """Request the page at ``cursor`` in the helper thread (returns at once). Runs inside
        the page's transaction: a helper that cannot start is logged, never the page's error
        (the worker then asks for the page itself)."""
        if self._future is not None:
            return
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="castiel-read-ahead")
            context = contextvars.copy_context()  # the run's trace and correlation id
            self._future = self._executor.submit(context.run, self._fetch, cursor)
            self._cursor = cursor
        except Exception:
            log.exception("sync.read_ahead_not_started")

    def _fetch(self, cursor):
        page = self.plan.adapter.fetch_page(cursor, since=self.plan.since)
        self._mapped = (page, self.plan.pipeline.map_page(page.records))
        return page

    def take(self, cursor):
        """The helper's attempt at the page at ``cursor``, as a callable that returns the page
        or raises the provider's error; None if none was started for that cursor."""
        future, self._future = self._future, None
        if future is None:
            return None
        if self._cursor != cursor:
            future.cancel()
            return None

        def attempt():
            try:
                return future.result()
            except (AdapterError, OutboundError):
                raise
            except Exception:
                log.exception("sync.read_ahead_failed")
                return self.plan.adapter.fetch_page(cursor, since=self.plan.since)

        return attempt

    def mapped(self, page):
        """The helper's mapping of ``page`` (None: not a page the helper fetched)."""
        done, self._mapped = self._mapped, None
        return done[1] if done is not None and done[0] is page else None

    def close(self) -> None:
        """Wait for a request still under way, and close the helper's connection (the run's
        outcome is decided by then: a failure here is logged, not the run's)."""
        executor, self._executor, self._future = self._executor, None, None
        if executor is None:
            return
        try:
            if self._cursor is not None:  # the helper ran: it may hold a connection
                executor.submit(connections.close_all).result()
        except Exception:
            log.exception("sync.read_ahead_not_closed")
        finally:
            executor.shutdown(wait=True)
