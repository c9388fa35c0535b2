"""Small test helpers."""

from __future__ import annotations

import hashlib


def fp(value: str) -> str:
    """A short fingerprint: tests compare tokens by it so a failing assertion never prints a
    token (secrets stay out of test output too)."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]
