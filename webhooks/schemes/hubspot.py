"""HubSpot v3: ``X-HubSpot-Signature-v3: <base64 HMAC-SHA256>`` keyed by the app secret.

Signed content is ``method + uri + body + timestamp`` where the timestamp is
``X-HubSpot-Request-Timestamp`` (milliseconds; HubSpot rejects anything older than five
minutes) and the URI is the full URL with the percent-escapes HubSpot documents decoded.
The URL must be the public one (``url`` option / ``CASTIEL_WEBHOOK_PUBLIC_BASE_URL``).
"""

from __future__ import annotations

import base64

from webhooks.schemes.base import (
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    check_tolerance,
    equal,
    hmac_digest,
    match_any,
    parse_timestamp,
)

# HubSpot: "decode any URL-encoded characters listed in the following table" (v3 docs).
_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def decode_uri(uri: str) -> str:
    for encoded, char in _DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def compute_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    content = method.encode() + decode_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac_digest(secret.encode(), content)).decode()


class HubSpotScheme(Scheme):
    slug = "hubspot"
    default_parser = "hubspot"
    label = "HubSpot (X-HubSpot-Signature-v3)"
    uses_timestamp = True
    config_options = {"url": "The public URL HubSpot calls (when a proxy changes it)."}

    def verify(self, incoming, keys, *, config, tolerance, now):
        given = incoming.header("X-HubSpot-Signature-v3")
        if not given:
            raise VerificationFailed(MISSING_SIGNATURE)
        raw_timestamp = incoming.header("X-HubSpot-Request-Timestamp")
        timestamp = parse_timestamp(raw_timestamp, unit="ms")
        label = match_any(
            keys,
            lambda key: equal(
                compute_signature(
                    key.value, incoming.method, incoming.url, incoming.body, raw_timestamp.strip()
                ),
                given.strip(),
            ),
        )
        check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)
