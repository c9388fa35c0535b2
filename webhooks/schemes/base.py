"""What every signature scheme shares: the incoming request, keys, results and helpers.

A scheme is a small stateless class: ``verify(incoming, keys, config=…, tolerance=…, now=…)``
returns which key matched or raises :class:`VerificationFailed` with a stable reason code.
Verification always runs on the raw request bytes (never on re-serialised JSON) and compares
with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qsl

# Stable reason codes (stored on the audit row, returned in 401 bodies, used as metric labels).
MISSING_SIGNATURE = "missing_signature"
MALFORMED_SIGNATURE = "malformed_signature"
BAD_SIGNATURE = "bad_signature"
MISSING_TIMESTAMP = "missing_timestamp"
MALFORMED_TIMESTAMP = "malformed_timestamp"
TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
MISSING_HEADER = "missing_header"
BAD_BODY_HASH = "bad_body_hash"

REASONS = (
    MISSING_SIGNATURE,
    MALFORMED_SIGNATURE,
    BAD_SIGNATURE,
    MISSING_TIMESTAMP,
    MALFORMED_TIMESTAMP,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    MISSING_HEADER,
    BAD_BODY_HASH,
)

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


class VerificationFailed(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SigningKey:
    """One secret a delivery may be signed with; ``label`` is ``current`` or ``previous``."""

    value: str
    label: str

    def __repr__(self) -> str:  # never print the value
        return f"SigningKey(label={self.label!r})"


@dataclass(frozen=True)
class Verified:
    key_label: str
    timestamp: float | None = None


class _Headers:
    """Case-insensitive read-only header view (Django's ``request.headers`` or a plain dict)."""

    def __init__(self, headers: Mapping[str, str]):
        self._lower = {str(k).lower(): v for k, v in headers.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lower.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._lower

    def items(self):
        return self._lower.items()


@dataclass
class Incoming:
    """The request a scheme verifies: raw body bytes and headers exactly as received."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    url_resolver: Callable[[], str] | None = field(default=None, repr=False)

    def __post_init__(self):
        self._headers = _Headers(self.headers)

    def header(self, name: str) -> str | None:
        value = self._headers.get(name)
        return value if value is None else str(value)

    @cached_property
    def url(self) -> str:
        """The absolute URL as the provider called it (only schemes that sign it ask)."""
        if self.url_resolver is None:
            raise RuntimeError("this request has no URL resolver")
        return self.url_resolver()

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON (parsed once, lazily)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """The body as ``application/x-www-form-urlencoded`` pairs (empty when it is not)."""
        content_type = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return []
        try:
            return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return []

    @cached_property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


def as_bytes(value: str | bytes) -> bytes:
    """Header values arrive as latin-1 decoded str (WSGI); turn them back into their bytes."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", errors="surrogatepass")


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two signatures (timing leaks no prefix)."""
    return hmac.compare_digest(as_bytes(a), as_bytes(b))


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, DIGESTS[algorithm]).digest()


def b64decode_strict(value: str) -> bytes | None:
    """Standard base64 (padding tolerated as sent); None when it is not base64."""
    try:
        return base64.b64decode(as_bytes(value.strip()), validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_timestamp(value: str | None, *, unit: str = "s") -> float:
    if value is None or value == "":
        raise VerificationFailed(MISSING_TIMESTAMP)
    try:
        number = float(value.strip())
    except ValueError:
        raise VerificationFailed(MALFORMED_TIMESTAMP) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise VerificationFailed(MALFORMED_TIMESTAMP)
    return number / 1000.0 if unit == "ms" else number


def check_tolerance(timestamp: float, *, now: float, tolerance: int) -> None:
    """Reject timestamps more than ``tolerance`` seconds from now.

    Always a check: registrations hold 1-3,600 s (``webhooks.models.TOLERANCE_RANGE``), and
    anything else that reaches here (0, negative) fails closed rather than meaning "any age".
    """
    if not tolerance or tolerance < 0 or abs(now - timestamp) > tolerance:
        raise VerificationFailed(TIMESTAMP_OUTSIDE_TOLERANCE)


class Scheme:
    """Base class: subclasses set the class attributes and implement :meth:`verify`."""

    slug: ClassVar[str]
    label: ClassVar[str]
    #: parser used when a registration names none
    default_parser: ClassVar[str] = "generic"
    #: dedupe rule used when a registration names none (see webhooks/dedupe.py)
    default_dedupe: ClassVar[tuple[str, ...]] = ()
    #: the status code an accepted delivery gets
    accepted_status: ClassVar[int] = 200
    #: whether the scheme signs a timestamp (tolerance applies)
    uses_timestamp: ClassVar[bool] = False
    #: whether the signature covers the body alone (no timestamp, no signed id): then the
    #: same body re-sent under a new delivery id is a replay, and receipt also deduplicates
    #: on the body's hash within the retention window (``WebhookBodySeen``)
    dedupe_signed_body: ClassVar[bool] = False
    #: documented options of ``scheme_config`` (name → help)
    config_options: ClassVar[dict[str, str]] = {}
    #: whether the receiver chooses the secret (GitHub, Graph's clientState, generic HMAC)
    #: rather than the provider issuing it (Stripe's whsec_…, Slack's signing secret): only
    #: then can Castiel generate one for the operator to paste into the provider
    receiver_chooses_secret: ClassVar[bool] = False

    def generate_secret(self, config: dict) -> str:
        """A new random secret in the form this scheme takes (256 bits)."""
        return secrets.token_urlsafe(32)

    def validate_config(self, config: dict) -> dict[str, str]:
        unknown = sorted(set(config) - set(self.config_options))
        if unknown:
            return {name: "Unknown option for this scheme." for name in unknown}
        return {}

    def validate_secret(self, secret: str) -> str | None:
        """An error message when ``secret`` cannot be a key of this scheme."""
        return None if secret else "The secret may not be empty."

    def verify(
        self,
        incoming: Incoming,
        keys: Iterable[SigningKey],
        *,
        config: dict,
        tolerance: int,
        now: float,
    ) -> Verified:
        raise NotImplementedError

    def handshake_before_verification(self, incoming: Incoming, *, config: dict):
        """A response for an unsigned verification request (e.g. Graph), or None."""
        return None

    def handshake(self, incoming: Incoming, *, config: dict):
        """A response for a signed verification request (e.g. Slack), or None."""
        return None

    def display_body(self, body: bytes) -> bytes:
        """The body as shown in admin and API (schemes that carry a secret in it mask it)."""
        return body


def match_any(keys: Iterable[SigningKey], matches: Callable[[SigningKey], bool]) -> str:
    """The label of the first key for which ``matches`` is true, else BAD_SIGNATURE."""
    for key in keys:
        if matches(key):
            return key.label
    raise VerificationFailed(BAD_SIGNATURE)
