"""Letting the worker's Python run while PostgreSQL works.

An inbound page is a serial chain: the worker formats the page, PostgreSQL writes it, the
worker waits, then fetches the next page while PostgreSQL waits. On a 2-core machine the two
take turns (docs/benchmarks.md, "Session 8"). Two pieces let them overlap without leaving the
page's transaction:

* :func:`sent_ahead` — the statements run inside the block go to PostgreSQL at once
  (psycopg's pipeline mode) and the block waits for their results only on leaving, raising
  the first error as Django would. With ``check_constraints`` the transaction's deferred
  constraint checks (the foreign keys of every row written so far) run there too instead of
  at ``COMMIT``, so they overlap as well; constraints go back to deferred afterwards.
* :func:`meanwhile` — what to start once those statements are sent: the inbound worker
  registers the next page's fetch, which runs in a helper thread on its own connection while
  this thread waits for PostgreSQL (one hand-over of the interpreter lock per page, not one
  per statement).

Elsewhere (SQLite, no pipeline) :func:`sent_ahead` runs the statements as usual and starts
nothing: there is no second core's worth of database work to overlap with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection

_started: ContextVar[Callable[[], None] | None] = ContextVar("castiel_meanwhile", default=None)


@contextmanager
def meanwhile(start: Callable[[], None]) -> Iterator[None]:
    """Inside this block, the first :func:`sent_ahead` block calls ``start()`` (once) after
    sending its statements, before waiting for them. ``start`` must return at once."""
    token = _started.set(start)
    try:
        yield
    finally:
        _started.reset(token)


@contextmanager
def sent_ahead(*, check_constraints: bool = False) -> Iterator[None]:
    """Send the statements run inside to PostgreSQL without waiting for each; wait for all of
    them on leaving the block (their errors raised there, as Django's). Use inside a
    transaction, with statements whose results nobody reads inside the block."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
        if check_constraints:
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        start = _started.get()
        if start is not None:
            _started.set(None)
            start()
