"""Correlation and execution ids carried through requests, queues and workers.

A correlation id names one piece of work end to end (the HTTP request that started it, every
task it queued, every outbound call those tasks made). An execution id names one run of one
task. Both live in context variables so logging and outbound calls pick them up without
being passed around.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
execution_id_var: ContextVar[str | None] = ContextVar("execution_id", default=None)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_id() -> str:
    return uuid.uuid4().hex


def sanitize(value: str | None) -> str | None:
    """Accept a caller-supplied id only if it is short and harmless in logs and headers."""
    if value and _VALID_ID.match(value):
        return value
    return None


def get_correlation_id() -> str | None:
    return correlation_id_var.get()


def get_execution_id() -> str | None:
    return execution_id_var.get()


def ensure_correlation_id() -> str:
    """The current correlation id, creating one (for work started outside a request)."""
    current = correlation_id_var.get()
    if current is None:
        current = new_id()
        correlation_id_var.set(current)
    return current


@contextmanager
def bound(*, correlation_id: str | None = None, execution_id: str | None = None) -> Iterator[None]:
    """Bind ids for the duration of a block, restoring the previous ones afterwards."""
    tokens = []
    if correlation_id is not None:
        tokens.append((correlation_id_var, correlation_id_var.set(correlation_id)))
    if execution_id is not None:
        tokens.append((execution_id_var, execution_id_var.set(execution_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
