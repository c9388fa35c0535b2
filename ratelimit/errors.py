"""Typed limiter errors, raised by the gate before a request is sent.

They subclass :class:`castiel.http.errors.OutboundError`, so code that already handles
outbound failures handles them too, and carry ``retry_after`` (seconds) so sync and push
workers reschedule the work instead of dropping it. Nothing was sent to the provider when
one of these is raised. Importing this module is cheap (no Django models).
"""

from __future__ import annotations

from castiel.http.errors import NotSentDeferred, NotSentRefused, OutboundError


class RateLimitError(OutboundError):
    """Castiel's own limiter did not let the request go now."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        level: str | None = None,
        reason: str = "",
        operation: str = "",
    ):
        super().__init__(message, retry_after=retry_after)
        self.level = level
        self.reason = reason
        self.operation = operation


class RateLimitDeferred(RateLimitError, NotSentDeferred):
    """A safe operation must wait longer than is reasonable in-process: reschedule the work
    ``retry_after`` seconds from now (it was not attempted and is not lost)."""


class RateLimitRefused(RateLimitError, NotSentRefused):
    """A risky operation (delete) is refused while its integration is throttled: it must not
    be retried in a hurry. Record ``str(error)`` as the reason; retry no sooner than
    ``retry_after``."""


class RateLimitExceedsCapacity(RateLimitError):
    """The request costs more than the limit ever admits in one window: it can never pass
    (split the work, or raise the limit). Not retryable."""

    retryable = False
