"""Query-string values whose names look secret, redacted: one rule for every place a URL or a
query string is kept (request logs, stored webhook events).

A name looks secret when it matches the log redaction's rule
(:func:`is_secret_key`: ``token``, ``secret``, ``password``,
``signature``, ``api_key`` …) or is one of the short names providers use for keys, OAuth
codes and signatures (``key``, ``code``, ``sig``, any name ending in ``key`` or ``sig``).
Everything else is kept as it came, byte for byte, so the rest stays useful for diagnosis.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

# Substrings of event keys whose values are never rendered.
_SECRET_KEY_PARTS = (
    "authorization",
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "cookie",
    "signature",
    "credential",
)
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """Whether a key (log field, JSON key) names something that must never be shown.

    Cached: the same few keys (log fields, span attributes) are asked about on every log line
    and every exported span, and a lookup costs a tenth of the ten substring tests."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


_SHORT_SECRET_NAMES = frozenset({"key", "code", "sig", "auth", "pass", "pwd", "passwd", "jwt"})
_REDACTED_VALUE = quote(REDACTED)
# name=value pairs of a query string inside free text (a logged request line or URL).
_PAIR_IN_TEXT = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;\s\"'#?]+)=(?P<value>[^&;\s\"'#]*)")


def is_secret_param(name: str) -> bool:
    lowered = unquote_plus(name).strip().lower()
    return (
        is_secret_key(lowered)
        or lowered in _SHORT_SECRET_NAMES
        or lowered.endswith(("key", "sig", "_code"))
    )


def redact_query(query: str) -> str:
    """``query`` (without its ``?``) with every secret-looking parameter's value replaced."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if sep and value and is_secret_param(name):
            value = _REDACTED_VALUE
        parts.append(f"{name}{sep}{value}")
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` with its query string redacted (scheme, host, path and fragment kept)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    return urlunsplit(parts._replace(query=redact_query(parts.query)))


def redact_text(text: str) -> str:
    """Free text (a log message) with the query strings of URLs in it redacted."""
    if "=" not in text or ("?" not in text and "&" not in text):
        return text

    def replace(match: re.Match) -> str:
        if match["value"] and is_secret_param(match["name"]):
            return f"{match['lead']}{match['name']}={_REDACTED_VALUE}"
        return match[0]

    return _PAIR_IN_TEXT.sub(replace, text)
