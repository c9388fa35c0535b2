"""Shopify: ``X-Shopify-Hmac-SHA256: <base64 HMAC-SHA256 of the body>`` keyed by the app's
client secret. Dedupe on ``X-Shopify-Webhook-Id`` (stable across Shopify's retries).
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


class ShopifyScheme(Scheme):
    slug = "shopify"
    label = "Shopify (X-Shopify-Hmac-SHA256)"
    default_dedupe = ("header:X-Shopify-Webhook-Id",)

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header("X-Shopify-Hmac-SHA256")
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        # Compare the decoded digests: base64 text may legitimately differ in padding or a
        # trailing newline (Ruby's Base64.encode64) while the bytes are the same.
        given = b64decode_strict(header)
        if given is None:
            raise VerificationFailed(BAD_SIGNATURE)
        label = match_any(
            keys,
            lambda key: hmac.compare_digest(hmac_digest(key.value.encode(), incoming.body), given),
        )
        return Verified(label)
