"""What every credential type declares: its fields, how it validates, how it applies itself.

A type is a stateless description (like a provider): the fields it keeps in the secret store
(``secret_fields``, never returned after storing) and the non-secret ``settings`` it accepts,
a ``clean()`` that validates both strictly (unknown or missing fields are errors), and an
``applier()`` that turns a stored secret into a ``requests.auth.AuthBase`` for outbound calls.
Refreshable types also implement ``grant()`` (credentials.types.oauth2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests


class CredentialValidationError(Exception):
    """Field errors, keyed ``secret.<field>`` / ``settings.<field>`` / ``type``."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    name: str
    required: bool = True
    help: str = ""
    # ``check(value) -> cleaned value``; raises ValueError with a human message.
    check: Callable[[Any], Any] | None = None
    choices: tuple[str, ...] = ()
    default: Any = None


@dataclass
class Cleaned:
    secret: dict[str, Any]
    settings: dict[str, Any]
    # Derived from the material itself (e.g. a certificate's notAfter).
    expires_at: datetime | None = None


def non_empty_string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def header_name(value: Any) -> str:
    value = non_empty_string(value)
    if any(c in value for c in " :\r\n\t") or not value.isascii():
        raise ValueError("must be a valid HTTP header name")
    return value


def http_url(value: Any) -> str:
    value = non_empty_string(value)
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class CredentialKind:
    slug: str = ""
    label: str = ""
    secret_fields: tuple[Field, ...] = ()
    settings_fields: tuple[Field, ...] = ()
    # Can Castiel obtain a new access token by itself (refresh / re-grant)?
    refreshable: bool = False
    # Created only through the interactive OAuth2 connect flow, never by posting secrets.
    interactive: bool = False

    def clean(self, *, secret: Any, settings: Any) -> Cleaned:
        errors: dict[str, str] = {}
        clean_secret = _clean_group("secret", self.secret_fields, secret, errors)
        clean_settings = _clean_group("settings", self.settings_fields, settings, errors)
        if errors:
            raise CredentialValidationError(errors)
        cleaned = Cleaned(secret=clean_secret, settings=clean_settings)
        self.clean_together(cleaned, errors)
        if errors:
            raise CredentialValidationError(errors)
        return cleaned

    def clean_together(self, cleaned: Cleaned, errors: dict[str, str]) -> None:
        """Cross-field checks; add to ``errors``."""

    def applier(self, secret: dict, settings: dict) -> requests.auth.AuthBase:
        raise NotImplementedError


def _clean_group(
    prefix: str, fields: tuple[Field, ...], data: Any, errors: dict[str, str]
) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors[prefix] = "must be a JSON object"
        return {}
    known = {f.name for f in fields}
    allowed = ", ".join(sorted(known)) or "none"
    unknown = [key for key in data if key not in known]
    if unknown and prefix == "secret":
        # Not named: a secret pasted in the wrong place must not be echoed back.
        errors[prefix] = f"{len(unknown)} unknown field(s) (allowed: {allowed})"
    else:
        for key in unknown:
            errors[f"{prefix}.{key}"] = f"unknown field (allowed: {allowed})"
    cleaned: dict[str, Any] = {}
    for spec in fields:
        value = data.get(spec.name)
        if value in (None, ""):
            if spec.required:
                errors[f"{prefix}.{spec.name}"] = "this field is required"
            elif spec.default is not None:
                cleaned[spec.name] = spec.default
            continue
        if spec.choices and value not in spec.choices:
            errors[f"{prefix}.{spec.name}"] = f"must be one of {', '.join(spec.choices)}"
            continue
        if spec.check is not None:
            try:
                value = spec.check(value)
            except ValueError as exc:
                errors[f"{prefix}.{spec.name}"] = str(exc)
                continue
        elif not isinstance(value, str):
            errors[f"{prefix}.{spec.name}"] = "must be a string"
            continue
        cleaned[spec.name] = value
    return cleaned


@dataclass
class HeaderAuth(requests.auth.AuthBase):
    """Sets fixed headers and query parameters (API keys, bearer tokens)."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def __call__(self, request):
        for key, value in self.headers.items():
            request.headers[key] = value
        if self.params:
            request.prepare_url(request.url, self.params)
        return request

    def __repr__(self) -> str:  # never print the values
        return f"HeaderAuth(headers={sorted(self.headers)}, params={sorted(self.params)})"
