"""Signing helpers written independently of the schemes under test (so a test checks the
scheme against the provider's rules, not against itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OCTOKIT_EXAMPLES = (
    REPO / "tests" / "node" / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com"
)


def github_headers(secret: str, body: bytes, *, event: str, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "HTTP_X_HUB_SIGNATURE_256": f"sha256={digest}",
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery,
    }


def stripe_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def slack_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "HTTP_X_SLACK_SIGNATURE": f"v0={digest}",
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp),
    }


def standard_headers(secret: str, body: bytes, msg_id: str, timestamp: int | None = None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    sig = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(timestamp),
        "HTTP_WEBHOOK_SIGNATURE": f"v1,{sig}",
    }


def octokit_examples(event: str) -> list[dict]:
    from tests.support.services import unavailable

    if not (OCTOKIT_EXAMPLES / "index.json").exists():
        unavailable("@octokit/webhooks-examples is not installed (npm ci in tests/node)")
    index = json.loads((OCTOKIT_EXAMPLES / "index.json").read_text())
    for entry in index:
        if entry["name"] == event:
            return entry["examples"]
    raise KeyError(event)
