"""Adapter contract: one page at a time, the cursor as plain JSON, typed failures.

An adapter is bound to one integration and one entity type. ``fetch_page(cursor, since=…)``
makes one request through the integration's :class:`~castiel.http.OutboundClient` (so the
credential, the rate-limit gate, timeouts and the SSRF guard apply) and returns a
:class:`Page`: the raw records, the cursor of the next page (``None`` when done) and the
rate-limit headers the provider sent. Cursors are JSON-serialisable dicts, because the sync
worker stores them as its checkpoint in the same transaction as the page's records.

HTTP failures surface as :class:`castiel.http.OutboundError` (retryable or not, with
``retry_after``); problems with what came back are :class:`AdapterError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.module_loading import import_string

from castiel.http.errors import parse_retry_after


class AdapterError(Exception):
    """The provider's answer or the adapter's configuration cannot be used."""

    code = "adapter_error"
    retryable = False


class MalformedPage(AdapterError):
    """The response was not the JSON shape the adapter expects (may be transient)."""

    code = "malformed_response"
    retryable = True


class InvalidCursor(AdapterError):
    """A stored cursor does not fit the adapter's pagination style."""

    code = "invalid_cursor"


class AdapterConfigError(AdapterError):
    code = "invalid_config"


@dataclass(frozen=True)
class RateLimitInfo:
    """What the provider said about its limit on this response (any header dialect)."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None

    @classmethod
    def from_headers(cls, headers) -> RateLimitInfo | None:
        def first_int(*names: str) -> int | None:
            for name in names:
                value = headers.get(name)
                if value is not None:
                    try:
                        return int(str(value).split(",")[0].split(";")[0].strip())
                    except ValueError:
                        continue
            return None

        limit = first_int("x-ratelimit-limit", "ratelimit-limit")
        remaining = first_int("x-ratelimit-remaining", "ratelimit-remaining")
        reset_after = parse_retry_after(headers.get("retry-after"))
        if reset_after is None and headers.get("ratelimit-reset") is not None:
            # IETF draft: RateLimit-Reset is delta-seconds.
            reset_after = float(first_int("ratelimit-reset") or 0)
        if reset_after is None and headers.get("x-ratelimit-reset") is not None:
            reset = first_int("x-ratelimit-reset") or 0
            # GitHub-style epoch seconds, or small delta-seconds (both exist in the wild).
            now = datetime.now().timestamp()
            reset_after = max(0.0, reset - now) if reset > 10**9 else float(reset)
        if limit is None and remaining is None and reset_after is None:
            return None
        return cls(limit=limit, remaining=remaining, reset_after=reset_after)


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None
    rate_limit: RateLimitInfo | None = None
    # Free-form facts for logs and tests (e.g. the request URL without its query).
    info: dict[str, Any] = field(default_factory=dict)


class Adapter:
    """Base class. Subclasses implement :meth:`fetch_page` and the record accessors."""

    def __init__(self, integration, entity_type: str, *, client=None):
        self.integration = integration
        self.entity_type = entity_type
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from integrations.clients import client_for

            self._client = client_for(self.integration)
        return self._client

    def validate(self) -> None:
        """Raise :class:`AdapterConfigError` if the configuration cannot work."""

    def validate_cursor(self, cursor: dict | None) -> None:
        """Raise :class:`InvalidCursor` if ``cursor`` is not one this adapter produced."""

    def fetch_page(self, cursor: dict | None, *, since: str | None = None) -> Page:
        raise NotImplementedError

    # Accessors on one raw record.
    def external_id(self, record: dict) -> str | None:
        raise NotImplementedError

    def updated_at(self, record: dict) -> str | None:
        return None

    def is_deleted(self, record: dict) -> bool:
        return False

    @property
    def identity_fields(self) -> tuple[str, ...]:
        """Remote fields that identify or timestamp a record (ignored by content dedup)."""
        return ()


def adapter_for(integration, entity_type: str, *, client=None) -> Adapter:
    provider = integration.provider_info
    if not provider.adapter:
        raise AdapterConfigError(f"provider {provider.slug!r} has no inbound adapter")
    cls = import_string(provider.adapter)
    return cls(integration, entity_type, client=client)
