"""Normalisers for matching people and companies across systems.

Each returns a canonical string, or ``None`` when the value cannot be normalised (so it never
produces a match key). Phones use Google's libphonenumber port (``phonenumbers``) rather than
hand-written rules: national formats, extensions and country codes are a minefield.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import urlsplit

import phonenumbers

DEFAULT_REGION = "US"


def normalize_email(value) -> str | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    local, domain = local.strip(), normalize_domain(domain)
    if not local or not domain:
        return None
    return f"{local}@{domain}"


def normalize_phone(value, region: str | None = DEFAULT_REGION) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_domain(value) -> str | None:
    """``https://www.Example.COM/about`` → ``example.com``; an email gives its domain."""
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    if not text:
        return None
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    if "//" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    host = host.strip(".")
    if host.startswith("www."):
        host = host[4:]
    if "." not in host:
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


# Epoch numbers above this are milliseconds (as seconds it would be the year 5138).
MILLISECONDS_ABOVE = 10**11
_EPOCH_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_timestamp(value) -> datetime | None:
    """A provider's timestamp → an aware datetime, or ``None`` when it is not one.

    The one parser for pulled records, watermarks and webhook events. Accepted: ISO 8601 text
    (naive means UTC; ``Z`` allowed), and Unix time as a number or as ASCII digits with an
    optional fraction (Slack's ``"1360782804.083113"``) — seconds, or milliseconds above
    :data:`MILLISECONDS_ABOVE`. Never raises: a value out of range (``1e20``, a 400-digit
    string), ``NaN``/infinity, booleans, non-ASCII digits (``"²"``, Arabic-Indic or
    full-width numerals) and signed text are not timestamps.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        try:
            seconds = value / 1000 if value > MILLISECONDS_ABOVE else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_TEXT.fullmatch(text):
            return parse_timestamp(float(text) if "." in text else int(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None
