"""Standard Webhooks (and Svix, which it was derived from).

Headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (Svix sends the same
with a ``svix-`` prefix). The signature header is a space-separated list of
``<version>,<base64>`` entries; any valid one is enough:

* ``v1``: HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed by the base64-decoded part of a
  ``whsec_…`` secret;
* ``v1a``: Ed25519 signature of the same content, verified with a ``whpk_…`` public key.

Dedupe on the message id.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from webhooks.schemes.base import (
    MISSING_HEADER,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    b64decode_strict,
    check_tolerance,
    hmac_digest,
    match_any,
    parse_timestamp,
)

SYMMETRIC_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"


def _header(incoming, name: str) -> str | None:
    return incoming.header(f"webhook-{name}") or incoming.header(f"svix-{name}")


def _key_material(value: str) -> tuple[str, bytes | None]:
    """("v1", hmac key) for whsec_/bare base64 secrets, ("v1a", public key) for whpk_."""
    if value.startswith(PUBLIC_KEY_PREFIX):
        return "v1a", b64decode_strict(value[len(PUBLIC_KEY_PREFIX) :])
    if value.startswith(SYMMETRIC_PREFIX):
        value = value[len(SYMMETRIC_PREFIX) :]
    return "v1", b64decode_strict(value)


def _signatures(header: str) -> list[tuple[str, bytes]]:
    found = []
    for entry in header.split(" "):
        version, sep, encoded = entry.partition(",")
        if not sep:
            continue
        decoded = b64decode_strict(encoded)
        if decoded:
            found.append((version, decoded))
    return found


class StandardWebhooksScheme(Scheme):
    slug = "standard_webhooks"
    label = "Standard Webhooks / Svix (v1 HMAC, v1a Ed25519)"
    default_dedupe = ("header:webhook-id|svix-id",)
    uses_timestamp = True

    def validate_secret(self, secret):
        version, material = _key_material(secret or "")
        if not material:
            return "Use a whsec_… secret (base64) or a whpk_… Ed25519 public key."
        if version == "v1a" and len(material) != 32:
            return "A whpk_… Ed25519 public key is 32 bytes."
        return None

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = _header(incoming, "signature")
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        message_id = _header(incoming, "id")
        if not message_id:
            raise VerificationFailed(MISSING_HEADER, "webhook-id")
        raw_timestamp = _header(incoming, "timestamp")
        timestamp = parse_timestamp(raw_timestamp)
        signed = f"{message_id}.{raw_timestamp}.".encode("latin-1", errors="replace")
        signed += incoming.body
        signatures = _signatures(header)

        def matches(key) -> bool:
            version, material = _key_material(key.value)
            if not material:
                return False
            candidates = [sig for v, sig in signatures if v == version]
            if version == "v1":
                expected = hmac_digest(material, signed)
                return sum(hmac.compare_digest(expected, sig) for sig in candidates) > 0
            public_key = Ed25519PublicKey.from_public_bytes(material)
            for sig in candidates:
                try:
                    public_key.verify(sig, signed)
                    return True
                except InvalidSignature:
                    continue
            return False

        label = match_any(keys, matches)
        check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)
