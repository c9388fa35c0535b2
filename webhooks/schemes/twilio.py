"""Twilio: ``X-Twilio-Signature: <base64 HMAC-SHA1>`` keyed by the account's auth token.

Signed content is the full URL Twilio called followed, for form posts, by every POST
parameter as ``name + value`` sorted by name (then value). For JSON bodies Twilio adds a
``bodySHA256`` query parameter (hex SHA-256 of the body) and signs the URL alone. Like the
official library, the URL is tried with the default port removed and added, because proxies
and Twilio disagree about ``:443``. The URL must be the public one: set the registration's
``url`` option or ``CASTIEL_WEBHOOK_PUBLIC_BASE_URL`` behind a proxy.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit, urlunsplit

from webhooks.schemes.base import (
    BAD_BODY_HASH,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    equal,
    hmac_digest,
    match_any,
)


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None or not parts.hostname:
        return url
    port = 443 if parts.scheme == "https" else 80
    netloc = parts.netloc + f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    netloc = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def signed_content(url: str, params: list[tuple[str, str]]) -> str:
    content = url
    names = sorted({name for name, _ in params})
    for name in names:
        for value in sorted({v for n, v in params if n == name}):
            content += name + value
    return content


def compute_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    digest = hmac_digest(token.encode(), signed_content(url, params).encode(), "sha1")
    return base64.b64encode(digest).decode()


class TwilioScheme(Scheme):
    slug = "twilio"
    label = "Twilio (X-Twilio-Signature)"
    default_dedupe = ("header:I-Twilio-Idempotency-Token",)
    config_options = {"url": "The public URL Twilio calls (when a proxy changes it)."}

    def verify(self, incoming, keys, *, config, tolerance, now):
        given = incoming.header("X-Twilio-Signature")
        if not given:
            raise VerificationFailed(MISSING_SIGNATURE)
        url = incoming.url
        body_hash = incoming.query_value("bodySHA256")
        if body_hash is not None:
            if not equal(hashlib.sha256(incoming.body).hexdigest(), body_hash.lower()):
                raise VerificationFailed(BAD_BODY_HASH)
            params: list[tuple[str, str]] = []
        else:
            params = incoming.form
        candidates = {_without_port(url), _with_port(url)}

        def matches(key) -> bool:
            return (
                sum(equal(compute_signature(key.value, u, params), given) for u in candidates) > 0
            )

        return Verified(match_any(keys, matches))
