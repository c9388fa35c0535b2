"""Headers as stored in the audit: anything that could carry a credential is masked."""

from __future__ import annotations

from collections.abc import Mapping

REDACTED = "[redacted]"
# Substrings of header names whose values are credentials. Signature headers are not in the
# list: an HMAC output reveals nothing about the key and is what an operator needs to debug.
SENSITIVE = ("authorization", "cookie", "token", "secret", "password", "api-key", "apikey")
MAX_VALUE = 2048


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(word in lowered for word in SENSITIVE):
            out[name] = REDACTED
        else:
            out[name] = str(value)[:MAX_VALUE]
    return out
