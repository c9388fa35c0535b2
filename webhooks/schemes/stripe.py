"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``.

Signed content is ``{t}.{raw body}``, HMAC-SHA256 keyed by the whole ``whsec_…`` string as
UTF-8 (Stripe does not base64-decode it). Several ``v1`` entries appear while Stripe rolls an
endpoint secret; any match is enough. Other schemes in the header (``v0`` test signatures)
are ignored, as the official libraries do. Dedupe on the event id in the body.
"""

from __future__ import annotations

from webhooks.schemes.base import (
    MALFORMED_SIGNATURE,
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


def parse_header(header: str) -> tuple[str | None, list[str]]:
    timestamp, signatures = None, []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value.strip().lower())
    return timestamp, signatures


class StripeScheme(Scheme):
    slug = "stripe"
    label = "Stripe (Stripe-Signature)"
    default_parser = "stripe"
    default_dedupe = ("body:id",)
    uses_timestamp = True

    def validate_secret(self, secret):
        if not secret:
            return "The secret may not be empty."
        return None

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header("Stripe-Signature")
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        raw_timestamp, signatures = parse_header(header)
        if raw_timestamp is None or not signatures:
            raise VerificationFailed(MALFORMED_SIGNATURE)
        timestamp = parse_timestamp(raw_timestamp)
        signed = raw_timestamp.encode("latin-1", errors="replace") + b"." + incoming.body

        def matches(key):
            expected = hmac_digest(key.value.encode(), signed).hex()
            # Check every candidate (no early exit) so timing does not tell which one matched.
            return sum(equal(expected, given) for given in signatures) > 0

        label = match_any(keys, matches)
        check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)
