"""Square: ``x-square-hmacsha256-signature: <base64 HMAC-SHA256>`` keyed by the subscription's
signature key.

Signed content is the subscription's notification URL followed by the raw body (Square's
``is_valid_webhook_event_signature`` in square-python-sdk, ``square/utilities/
webhooks_helper.py``). The URL is the one registered with Square: set the registration's
``url`` option (or ``CASTIEL_WEBHOOK_PUBLIC_BASE_URL``) when a proxy changes it. Square
signs no timestamp; dedupe on the body's ``event_id`` (signed, and the same across Square's
retries).
"""

from __future__ import annotations

import hmac

from webhooks.schemes.base import (
    BAD_SIGNATURE,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    b64decode_strict,
    hmac_digest,
    match_any,
)

HEADER = "x-square-hmacsha256-signature"


def compute_signature(key: str, url: str, body: bytes) -> bytes:
    return hmac_digest(key.encode(), url.encode() + body)


class SquareScheme(Scheme):
    slug = "square"
    label = "Square (x-square-hmacsha256-signature)"
    default_dedupe = ("body:event_id",)
    config_options = {
        "url": "The notification URL registered with Square (when a proxy changes it)."
    }

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header(HEADER)
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        given = b64decode_strict(header)
        if given is None:
            raise VerificationFailed(BAD_SIGNATURE)
        url, body = incoming.url, incoming.body
        label = match_any(
            keys, lambda key: hmac.compare_digest(compute_signature(key.value, url, body), given)
        )
        return Verified(label)
