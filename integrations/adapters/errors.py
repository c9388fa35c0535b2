"""Provider errors: an HTTP failure read in the provider's own words.

``castiel.http.errors.classify`` knows HTTP (status, ``Retry-After``, GitHub's rate-limit
403). Each provider adds what only its body says: Salesforce's ``errorCode`` array, HubSpot's
``category``, Stripe's ``error.type``/``code`` and ``Stripe-Should-Retry``, Slack's HTTP 200
with ``ok: false``. The adapter turns that into a :class:`ProviderError` (or
:class:`ProviderRateLimitedError`) — still an ``HttpError``, so the sync and push workers
classify it exactly as before (``retryable``, ``retry_after``, ``status``) — with:

* ``reason``: one of the stable :data:`REASONS` below (what the test-connection report, the
  logs and the dead letters say, whatever the provider);
* ``provider_code``: the provider's own code (``INVALID_SESSION_ID``, ``MISSING_SCOPES``,
  ``resource_missing``, ``missing_scope`` …);
* ``details``: what an operator needs to fix it (the scopes to grant, the offending fields).

The message never carries a credential: it is built from the provider's error text, which
providers already mask (Stripe shows ``sk_test_****Z9x2``).
"""

from __future__ import annotations

from typing import Any

import requests

from castiel.http.errors import HttpError, RateLimitedError, classify

# Stable reasons, whatever the provider calls them.
INVALID_CREDENTIALS = "invalid_credentials"  # wrong, expired or revoked, and no refresh helped
MISSING_SCOPE = "missing_scope"  # authenticated, but not granted what this call needs
FORBIDDEN = "forbidden"  # authenticated, but the account/user may not do this
NOT_FOUND = "not_found"
VALIDATION_FAILED = "validation_failed"  # the provider refused the data written
CONFLICT = "conflict"  # duplicates, several matches, an object lock
BAD_REQUEST = "bad_request"  # the request itself is wrong (usually configuration)
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "provider_unavailable"  # 5xx, timeouts on the provider's side
PROVIDER_ERROR = "provider_error"  # anything else

REASONS = (
    INVALID_CREDENTIALS,
    MISSING_SCOPE,
    FORBIDDEN,
    NOT_FOUND,
    VALIDATION_FAILED,
    CONFLICT,
    BAD_REQUEST,
    RATE_LIMITED,
    UNAVAILABLE,
    PROVIDER_ERROR,
)

# What a bare HTTP status means when the body says nothing more specific.
_BY_STATUS = {
    400: BAD_REQUEST,
    401: INVALID_CREDENTIALS,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
    410: NOT_FOUND,
    412: CONFLICT,
    422: VALIDATION_FAILED,
    429: RATE_LIMITED,
}


def reason_for_status(status: int) -> str:
    if status >= 500:
        return UNAVAILABLE
    return _BY_STATUS.get(status, PROVIDER_ERROR)


class _ProviderDetails:
    reason: str = PROVIDER_ERROR
    provider_code: str = ""
    details: dict[str, Any]
    http_status: int = 0

    @property
    def code(self) -> str:  # OutboundError.code is the class name; this is the reason
        return self.reason


class ProviderError(_ProviderDetails, HttpError):
    """An HTTP failure the provider explained (see the module docstring)."""


class ProviderRateLimitedError(_ProviderDetails, RateLimitedError):
    """The provider said we are over one of its limits (any status, any dialect)."""


def provider_error(
    response: requests.Response,
    *,
    what: str,
    reason: str | None = None,
    message: str = "",
    provider_code: str = "",
    details: dict[str, Any] | None = None,
    retryable: bool | None = None,
    retry_after: float | None = None,
    rate_limited: bool | None = None,
    status: int | None = None,
) -> HttpError:
    """The error ``response`` represents, refined by what the provider's body said.

    Everything not given falls back to the shared classification (``castiel.http.errors``):
    retryable statuses, ``Retry-After``, GitHub-style rate-limit 403s. ``status`` overrides the
    HTTP status for providers that report errors with 200 (Slack): the workers act on it (a
    404 delete is "already gone"), the real one stays in ``http_status``.
    """
    base = classify(response, what=what)
    http_status = response.status_code
    effective = status if status is not None else http_status
    if base is None:  # a 2xx/3xx the provider calls an error (Slack ok:false, Salesforce 300)
        base = HttpError(
            f"{what} failed",
            status=effective,
            retryable=False,
            body_excerpt=response.text[:500] if response.content else "",
            response=response,
        )
    if rate_limited is None:
        rate_limited = isinstance(base, RateLimitedError)
    reason = reason or (RATE_LIMITED if rate_limited else reason_for_status(effective))
    if retryable is None:
        retryable = True if rate_limited else base.retryable
    if retry_after is None:
        retry_after = base.retry_after
    text = f"{what} failed with HTTP {http_status}"
    if provider_code:
        text += f" ({provider_code})"
    if message:
        text += f": {message}"
    cls = ProviderRateLimitedError if rate_limited else ProviderError
    error = cls(
        text,
        status=effective,
        retryable=retryable,
        retry_after=retry_after,
        body_excerpt=base.body_excerpt,
        response=response,
    )
    error.reason = reason
    error.provider_code = provider_code
    error.details = dict(details or {})
    error.http_status = http_status
    return error


def reason_of(exc: BaseException) -> str | None:
    """The stable reason of a provider error (None for other exceptions)."""
    return getattr(exc, "reason", None) if isinstance(exc, _ProviderDetails) else None
