"""SendGrid signed Event Webhook: an ECDSA P-256 (SHA-256) signature of timestamp + body.

Headers ``X-Twilio-Email-Event-Webhook-Signature`` (base64 of the DER signature) and
``X-Twilio-Email-Event-Webhook-Timestamp`` (seconds, checked against the registration's
tolerance). The registration's "secret" is the verification key SendGrid shows under Mail
Settings → Signed Event Webhook: a **public** key, base64 of its DER SubjectPublicKeyInfo
(as sendgrid-python's ``EventWebhook.convert_public_key_to_ecdsa`` reads it). Signed content
is the timestamp text followed by the raw body bytes, exactly as received (SendGrid's body
ends with ``\\r\\n``).

A batch carries no id of its own: dedupe on the body hash (a retry re-sends the same bytes).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from webhooks.schemes.base import (
    BAD_SIGNATURE,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    as_bytes,
    b64decode_strict,
    check_tolerance,
    match_any,
    parse_timestamp,
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key(value: str) -> ec.EllipticCurvePublicKey | None:
    """The P-256 public key in ``value`` (base64 DER; PEM armour tolerated), or None."""
    text = "".join(
        line for line in (value or "").strip().splitlines() if not line.startswith("-----")
    )
    der = b64decode_strict(text)
    if not der:
        return None
    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        return None
    return key


class SendGridScheme(Scheme):
    slug = "sendgrid"
    label = "SendGrid signed Event Webhook (ECDSA P-256)"
    uses_timestamp = True

    def validate_secret(self, secret):
        if public_key(secret) is None:
            return (
                "Paste the verification key SendGrid shows for the signed Event Webhook "
                "(a base64 ECDSA P-256 public key)."
            )
        return None

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header(SIGNATURE_HEADER)
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        raw_timestamp = incoming.header(TIMESTAMP_HEADER)
        timestamp = parse_timestamp(raw_timestamp)
        signature = b64decode_strict(header)
        if not signature:
            raise VerificationFailed(BAD_SIGNATURE)
        signed = as_bytes(raw_timestamp) + incoming.body

        def matches(key) -> bool:
            verifier = public_key(key.value)
            if verifier is None:
                return False
            try:
                verifier.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True

        label = match_any(keys, matches)
        check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)
