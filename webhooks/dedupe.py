"""The dedupe key of a delivery: what makes a provider's retry recognisable.

A rule is a list of parts, each ``header:<Name>`` (alternatives ``header:a|b``: the first
present wins) or ``body:<json.path>``; several parts form a composite key. When a part is
missing the key falls back to the SHA-256 of the raw body, which still catches byte-identical
retries. Long keys are hashed so they fit the indexed column.
"""

from __future__ import annotations

import hashlib

from integrations.jsonpath import get_path, valid_path

MAX_KEY = 255


def validate_rule(rule) -> str | None:
    if not isinstance(rule, list):
        return 'A list of parts such as "header:X-GitHub-Delivery" or "body:id".'
    for part in rule:
        kind, sep, name = str(part).partition(":")
        if not sep or kind not in ("header", "body") or not name:
            return f"{part!r}: use header:<Name> or body:<json.path>."
        if kind == "body" and not valid_path(name):
            return f"{part!r}: not a dotted JSON path."
    return None


def body_hash_key(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def dedupe_key(rule: list[str] | tuple[str, ...], incoming) -> str:
    values = []
    for part in rule:
        kind, _, name = part.partition(":")
        if kind == "header":
            value = next((v for v in (incoming.header(n) for n in name.split("|")) if v), None)
        else:
            value = get_path(incoming.json, name)
            if isinstance(value, (dict, list)):
                value = None
        if value is None or value == "":
            return body_hash_key(incoming.body)
        values.append(str(value))
    if not values:
        return body_hash_key(incoming.body)
    key = "|".join(values)
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key
