"""The one outbound HTTP layer every adapter uses (auth, limits, errors, SSRF, logging)."""

from castiel.http.client import OutboundClient
from castiel.http.errors import (
    HttpError,
    OutboundError,
    RateLimitedError,
    RedirectRefusedError,
    SsrfBlockedError,
    TransportError,
)

__all__ = [
    "HttpError",
    "OutboundClient",
    "OutboundError",
    "RateLimitedError",
    "RedirectRefusedError",
    "SsrfBlockedError",
    "TransportError",
]
