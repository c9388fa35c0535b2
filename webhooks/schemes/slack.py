"""Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">``.

``X-Slack-Request-Timestamp`` is signed and must be within the tolerance (Slack: 5 minutes).
The Events API ``url_verification`` request is signed too: after verification the receiver
answers its ``challenge`` (and stores nothing to process). Dedupe on the Events API
``event_id``; slash commands and interactivity payloads (form-encoded) have none and fall
back to the body hash.
"""

from __future__ import annotations

from django.http import JsonResponse

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


class SlackScheme(Scheme):
    slug = "slack"
    default_parser = "slack"
    label = "Slack (v0 signing secret)"
    default_dedupe = ("body:event_id",)
    uses_timestamp = True

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header("X-Slack-Signature")
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        if not header.startswith("v0="):
            raise VerificationFailed(MALFORMED_SIGNATURE)
        raw_timestamp = incoming.header("X-Slack-Request-Timestamp")
        timestamp = parse_timestamp(raw_timestamp)
        signed = b"v0:" + raw_timestamp.encode("latin-1", errors="replace") + b":" + incoming.body
        given = header[3:].strip().lower()
        label = match_any(
            keys, lambda key: equal(hmac_digest(key.value.encode(), signed).hex(), given)
        )
        check_tolerance(timestamp, now=now, tolerance=tolerance)
        return Verified(label, timestamp)

    def handshake(self, incoming, *, config):
        data = incoming.json
        if isinstance(data, dict) and data.get("type") == "url_verification":
            return JsonResponse({"challenge": str(data.get("challenge", ""))})
        return None
