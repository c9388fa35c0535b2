"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

The legacy ``X-Hub-Signature: sha1=…`` header is accepted only when the registration sets
``allow_sha1`` (GitHub still sends it for compatibility; SHA-1 HMAC is not broken, but a
receiver that accepts it keeps a weaker path open for no reason once SHA-256 is available).
Dedupe on ``X-GitHub-Delivery`` (a GUID GitHub keeps across redeliveries) — and, because
that header is not signed, also on the hash of the signed body within the retention window
(``dedupe_signed_body``): the same body under a fresh delivery id is a replay.
"""

from __future__ import annotations

from webhooks.schemes.base import (
    MALFORMED_SIGNATURE,
    MISSING_SIGNATURE,
    Scheme,
    VerificationFailed,
    Verified,
    equal,
    hmac_digest,
    match_any,
)


class GitHubScheme(Scheme):
    slug = "github"
    label = "GitHub (X-Hub-Signature-256)"
    receiver_chooses_secret = True
    default_parser = "github"
    default_dedupe = ("header:X-GitHub-Delivery",)
    dedupe_signed_body = True
    config_options = {"allow_sha1": "Also accept the legacy X-Hub-Signature (sha1=…) header."}

    def verify(self, incoming, keys, *, config, tolerance, now):
        header = incoming.header("X-Hub-Signature-256")
        algorithm, prefix = "sha256", "sha256="
        if not header and config.get("allow_sha1"):
            header = incoming.header("X-Hub-Signature")
            algorithm, prefix = "sha1", "sha1="
        if not header:
            raise VerificationFailed(MISSING_SIGNATURE)
        if not header.startswith(prefix):
            raise VerificationFailed(MALFORMED_SIGNATURE)
        given = header[len(prefix) :].strip().lower()
        label = match_any(
            keys,
            lambda key: equal(
                hmac_digest(key.value.encode(), incoming.body, algorithm).hex(), given
            ),
        )
        return Verified(label)
