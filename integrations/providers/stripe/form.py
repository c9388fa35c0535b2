"""Stripe's form encoding: nested objects and lists as bracketed keys.

``{"metadata": {"a": "1"}, "preferred_locales": ["en"]}`` →
``metadata[a]=1&preferred_locales[0]=en``. ``None`` becomes ``""``, which is how Stripe
unsets a field; booleans are ``true``/``false``. Hand-written (a dozen lines) because the
official ``stripe`` package keeps its encoder private, and the shape is documented:
https://docs.stripe.com/api ("accepts form-encoded request bodies") and
https://docs.stripe.com/api/metadata (``metadata[key]=value``).
"""

from __future__ import annotations

from typing import Any


def _pairs(prefix: str, value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _pairs(f"{prefix}[{key}]", item)
    elif isinstance(value, list | tuple):
        if not value:
            yield prefix, ""  # an empty list clears it
        for index, item in enumerate(value):
            yield from _pairs(f"{prefix}[{index}]", item)
    elif value is None:
        yield prefix, ""
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)


def encode_form(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Key/value pairs for ``requests`` (``data=``), which form-encodes them in order."""
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        pairs.extend(_pairs(key, value))
    return pairs
