"""Webhook signatures the sandbox sends: Standard Webhooks or GitHub style (HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """``webhook-id``/``-timestamp``/``-signature: v1,<base64>`` over ``{id}.{ts}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def verify_standard(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = standard_headers(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )["webhook-signature"]
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in headers.get("webhook-signature", "").split()
    )


def github_headers(secret: str, delivery_id: str, event: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Event": event,
    }
