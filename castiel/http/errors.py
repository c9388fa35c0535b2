"""Outbound errors and their classification, in one place for inbound and outbound work.

Retryable: connection errors, timeouts, 408, 425, 429, every 5xx, and provider rate-limit
responses that use another status (GitHub answers 403 with ``x-ratelimit-remaining: 0`` or a
``retry-after`` for secondary limits). Everything else (other 4xx, validation errors) is
permanent: retrying cannot help, so callers dead-letter it at once. :func:`next_step` turns
any failure (these, adapter errors, the rate limiter's refusals) into what the work does next.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import requests

RETRYABLE_STATUSES = frozenset({408, 425, 429})
BODY_EXCERPT_CHARS = 500


class OutboundError(Exception):
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.__class__.__name__


class AuthUnavailable(OutboundError):
    """The request cannot be authenticated until a human acts (the credential needs
    re-authorisation or was revoked)."""

    code = "credential_unavailable"


class NotSentDeferred(OutboundError):
    """The request was not sent: a safe operation must wait ``retry_after`` seconds (raised by
    Castiel's own rate limiter). Not a failed attempt."""

    retryable = True


class NotSentRefused(OutboundError):
    """The request was not sent: a risky operation (delete) is refused until ``retry_after``
    (raised by Castiel's own rate limiter). Not a failed attempt, never dropped."""

    retryable = True


class TransportError(OutboundError):
    """No HTTP answer: DNS, connection refused/reset, TLS, timeout."""

    retryable = True


class SsrfBlockedError(OutboundError):
    """The URL resolves to a network tenants may not reach."""


class RedirectRefusedError(OutboundError):
    """A redirect the client will not follow (an authenticated request sent from https to
    http). Permanent: the provider's configuration has to change."""


class HttpError(OutboundError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        retryable: bool,
        retry_after: float | None = None,
        body_excerpt: str = "",
        response: requests.Response | None = None,
    ):
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.retryable = retryable
        self.body_excerpt = body_excerpt
        self.response = response


class RateLimitedError(HttpError):
    """The provider said we are over its limit (429, or a provider-specific signal)."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def is_rate_limited(response: requests.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code == 403:
        headers = response.headers
        if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
            return True
    return False


def classify(response: requests.Response, *, what: str) -> HttpError | None:
    """The error an HTTP response represents, or None for success (2xx/3xx)."""
    status = response.status_code
    if status < 400:
        return None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    excerpt = _excerpt(response)
    if is_rate_limited(response):
        if retry_after is None:
            retry_after = _reset_delay(response)
        return RateLimitedError(
            f"{what} was rate limited ({status})",
            status=status,
            retryable=True,
            retry_after=retry_after,
            body_excerpt=excerpt,
            response=response,
        )
    retryable = status in RETRYABLE_STATUSES or status >= 500
    return HttpError(
        f"{what} failed with HTTP {status}",
        status=status,
        retryable=retryable,
        retry_after=retry_after,
        body_excerpt=excerpt,
        response=response,
    )


def classify_exception(exc: BaseException) -> OutboundError:
    if isinstance(exc, OutboundError):
        return exc
    if isinstance(exc, requests.Timeout):
        return TransportError(f"timed out: {exc.__class__.__name__}")
    if isinstance(exc, requests.ConnectionError):
        return TransportError(f"connection failed: {exc.__class__.__name__}")
    if isinstance(exc, requests.RequestException):
        return OutboundError(f"request failed: {exc.__class__.__name__}")
    return OutboundError(f"unexpected error: {exc.__class__.__name__}")


def _reset_delay(response: requests.Response) -> float | None:
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return None


def _excerpt(response: requests.Response) -> str:
    try:
        return response.text[:BODY_EXCERPT_CHARS]
    except Exception:
        return ""


# What work that failed does next (see next_step).
REFUSED = "refused"  # the rate limiter refused a risky operation: nothing was sent
DEFERRED = "deferred"  # the rate limiter asks a safe operation to wait: nothing was sent
RETRY = "retry"  # retryable: back off (never below Retry-After), up to an attempt limit
PERMANENT = "permanent"  # retrying cannot help: fail / dead-letter at once


def next_step(exc: BaseException) -> str:
    """The one classification inbound sync and outbound push share.

    The rate limiter's errors (``ratelimit.errors``: ``RateLimitRefused`` for a
    delete while throttled, ``RateLimitDeferred`` for a safe operation that must wait longer
    than it may in-process) derive from :class:`NotSentRefused` / :class:`NotSentDeferred`
    defined here, so this module does not depend on the limiter; both carry ``retry_after``
    and mean the request was never sent. Everything else follows its ``retryable`` flag
    (``OutboundError``, adapter errors).
    """
    if isinstance(exc, NotSentRefused):
        return REFUSED
    if isinstance(exc, NotSentDeferred):
        return DEFERRED
    return RETRY if getattr(exc, "retryable", False) else PERMANENT
