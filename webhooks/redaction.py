"""Headers as stored in the audit: anything that could carry a credential is masked."""

from __future__ import annotations

import functools
from collections.abc import Mapping

REDACTED = "[redacted]"
# Substrings of header names whose values are credentials. Signature headers are not in the
# list: an HMAC output reveals nothing about the key and is what an operator needs to debug.
SENSITIVE = ("authorization", "cookie", "token", "secret", "password", "api-key", "apikey")
MAX_VALUE = 2048


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if _sensitive(name) else str(value)[:MAX_VALUE]
        for name, value in headers.items()
    }


@functools.lru_cache(maxsize=1024)
def _sensitive(name: str) -> bool:
    """Decided once per header name (deliveries repeat the same few dozen names; a bounded
    cache, because senders choose them)."""
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE)
