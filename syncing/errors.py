"""How a failure is named where an operator reads it — a dead letter, a change's attempt log,
the dry run's answer: a stable code and a bounded message whose body excerpt is redacted
(any JSON key that looks like a secret, the rule the logs use). Below inbound and outbound,
like ``syncing.metrics``: both name failures this way.
"""

from __future__ import annotations

import json

from castiel.http.errors import BODY_EXCERPT_CHARS, HttpError
from castiel.observability.redaction import REDACTED, is_secret_key


def redact(value):
    """``value`` with every secret-looking key's value replaced (recursively)."""
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def body_excerpt(body) -> str:
    """A redacted, bounded excerpt of a request or response body (bytes, str or JSON)."""
    if body is None or body == b"" or body == "":
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body[:BODY_EXCERPT_CHARS]
    return json.dumps(redact(body), ensure_ascii=False, default=str)[:BODY_EXCERPT_CHARS]


def error_code(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(exc, HttpError) and status:
        return f"http_{status}"
    code = getattr(exc, "code", None)
    return str(code).lower() if code else exc.__class__.__name__.lower()


def error_message(exc: BaseException) -> str:
    message = str(exc) or exc.__class__.__name__
    excerpt = getattr(exc, "body_excerpt", "")
    if excerpt:
        message += f" — {body_excerpt(excerpt)[:200]}"
    return message[:2000]
