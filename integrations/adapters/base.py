"""Adapter contract: pull one page at a time (the cursor as plain JSON), push one record at a
time, typed failures.

An adapter is bound to one integration and one entity type. ``fetch_page(cursor, since=…)``
makes one request through the integration's :class:`~castiel.http.OutboundClient` (so the
credential, the rate-limit gate, timeouts and the SSRF guard apply) and returns a
:class:`Page`: the raw records, the cursor of the next page (``None`` when done) and the
rate-limit headers the provider sent. Cursors are JSON-serialisable dicts, because the sync
worker stores them as its checkpoint in the same transaction as the page's records.

The push half (used by the outbound worker, :mod:`syncing.outbound.push`): ``get_one``,
``create``, ``update`` and ``delete`` take and return the provider's own record shape (the
worker maps local fields with :meth:`FieldMapping.to_remote`). Every write carries the
change's idempotency key: adapters send it where the provider honours one (Stripe-style
``Idempotency-Key``); otherwise ``find_created`` looks a create up by the marker it wrote,
so a create retried after a lost answer never creates twice. ``update``/``delete`` take the
version the worker last saw (``if_version``) and raise :class:`RemoteChanged` when the
provider refuses a conditional write.

Batch writes (optional): an adapter whose provider has batch endpoints declares them with
:attr:`Adapter.batch_support` (:class:`BatchSupport`: which operations, the most items per
request) and implements :meth:`Adapter.push_many`: one request for many items of one
operation, answered per item (:class:`ItemOutcome`, keyed by each item's idempotency key) —
a result, or the item's own failure (an :class:`ItemFailed`, retryable or not). A failure of
the whole request raises as a single write would. Adapters without it push one record at a
time.

HTTP failures surface as :class:`castiel.http.OutboundError` (retryable or not, with
``retry_after``); problems with what came back are :class:`AdapterError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string

from castiel.http import limit_headers


class AdapterError(Exception):
    """The provider's answer or the adapter's configuration cannot be used."""

    code = "adapter_error"
    retryable = False


class MalformedPage(AdapterError):
    """The response was not the JSON shape the adapter expects (may be transient)."""

    code = "malformed_response"
    retryable = True


EXCERPT = 160  # characters of a non-JSON answer quoted in the error


def json_body(response, *, source: str) -> Any:
    """``response.json()``, or :class:`MalformedPage` naming the status, content type and the
    start of what ``source`` answered instead."""
    try:
        return response.json()
    except ValueError:
        content_type = response.headers.get("content-type", "unknown")
        excerpt = response.text[:EXCERPT].replace("\n", " ")
        raise MalformedPage(
            f"{source} answered non-JSON (HTTP {response.status_code}, {content_type}): {excerpt!r}"
        ) from None


class InvalidCursor(AdapterError):
    """A stored cursor does not fit the adapter's pagination style."""

    code = "invalid_cursor"


class AdapterConfigError(AdapterError):
    code = "invalid_config"


class PushNotSupported(AdapterError):
    """The adapter cannot write to this provider (a pull-only adapter)."""

    code = "push_not_supported"


class RemoteChanged(AdapterError):
    """A conditional write was refused: the remote record changed since ``if_version``."""

    code = "remote_changed"


@dataclass
class PushResult:
    """What the provider holds after a write."""

    external_id: str
    record: dict[str, Any] | None = None  # the provider's copy (raw), None when unknown
    version: str | None = None
    replayed: bool = False  # answered from the provider's idempotency-key store
    status: int | None = None


BATCH_OPERATIONS = ("create", "update", "delete")


@dataclass(frozen=True)
class BatchSupport:
    """What an adapter's batch endpoint can do.

    ``operations``: among ``create``/``update``/``delete``; ``max_size``: items per request;
    ``partial``: items succeed or fail on their own (``False``: one failed item fails the
    request — the worker then pushes that batch's changes one by one);
    ``idempotent_creates``: a create item sent again after a lost answer is not created twice
    (per-item keys, or a unique property the provider checks)."""

    operations: frozenset[str]
    max_size: int
    partial: bool = True
    idempotent_creates: bool = False

    def covers(self, operation: str) -> bool:
        return self.max_size > 1 and operation in self.operations


@dataclass
class BatchItem:
    """One change in a batch request: its idempotency key (how its result is found again),
    the record's external id (update, delete) and what to write (create, update)."""

    key: str
    external_id: str | None = None
    payload: dict[str, Any] | None = None


class ItemFailed(AdapterError):
    """One item of a batch failed (the others may have succeeded)."""

    # What was sent for this item (the batch's method, URL and headers, the item as the
    # body), for its dead letter; set by the push worker (syncing/outbound/batches.py).
    request_described: dict | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        code: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code or (f"http_{status}" if status else "item_failed")


@dataclass
class ItemOutcome:
    """A batch item's answer: a result, or its own failure."""

    result: PushResult | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class RateLimitInfo:
    """What the provider said about its limit on this response (any header dialect)."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None

    @classmethod
    def from_headers(cls, headers, *, reader=None) -> RateLimitInfo | None:
        """Read as the rate limiter reads it (``castiel.http.limit_headers``, the provider's
        ``reader`` or the generic families)."""
        return cls.from_signal(limit_headers.parse(headers, reader=reader))

    @classmethod
    def from_signal(cls, signal: limit_headers.ProviderSignal) -> RateLimitInfo | None:
        quota = signal.quota
        if quota is None and signal.retry_after is None:
            return None
        return cls(
            limit=quota.limit if quota else None,
            remaining=quota.remaining if quota else None,
            reset_after=signal.retry_after
            if signal.retry_after is not None
            else (quota.reset_after if quota else None),
        )


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
            from integrations.connections import client_for

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

    def remote_version(self, record: dict) -> str | None:
        """The provider's version of a record (ETag, version number, updated-at), if any."""
        return None

    def modified_by_self(self, record: dict) -> bool:
        """True when the provider says Castiel's own integration user made this version."""
        return False

    # -- the push half ---------------------------------------------------------------------

    supports_idempotency_keys = False
    supports_conditional_writes = False
    #: the provider's batch endpoints (None: one record per request)
    batch_support: BatchSupport | None = None

    def push_many(self, operation: str, items: list[BatchItem]) -> dict[str, ItemOutcome]:
        """Write ``items`` (one ``operation``) in one request; each item's outcome by its key.

        An item missing from the answer counts as a retryable failure (the worker's
        business); a failure of the whole request raises like a single write."""
        raise PushNotSupported(f"{type(self).__name__} has no batch endpoint")

    @property
    def read_only_fields(self) -> tuple[str, ...]:
        """Remote fields a write must never send (ids, timestamps the provider owns)."""
        return self.identity_fields

    def get_one(self, external_id: str) -> PushResult | None:
        """The provider's current copy of one record (``record`` and ``version``), or None
        when it does not exist."""
        raise PushNotSupported(f"{type(self).__name__} cannot read single records")

    def create(self, payload: dict, *, idempotency_key: str) -> PushResult:
        raise PushNotSupported(f"{type(self).__name__} cannot create records")

    def update(
        self,
        external_id: str,
        payload: dict,
        *,
        idempotency_key: str,
        if_version: str | None = None,
    ) -> PushResult:
        raise PushNotSupported(f"{type(self).__name__} cannot update records")

    def delete(
        self, external_id: str, *, idempotency_key: str, if_version: str | None = None
    ) -> PushResult:
        raise PushNotSupported(f"{type(self).__name__} cannot delete records")

    def find_created(self, idempotency_key: str, *, payload: dict | None = None) -> dict | None:
        """The record an earlier attempt of this create made, found by the marker it wrote
        (external-id lookup for providers without idempotency keys); None if none (or if
        the adapter writes no marker). ``payload``: what the create sends (where to look,
        e.g. a Slack message's channel)."""
        return None

    @property
    def can_find_created(self) -> bool:
        return False

    def describe_request(self) -> dict:
        """A summary of the last write request for dead letters (no credentials)."""
        return dict(getattr(self, "last_request", None) or {})


def adapter_for(integration, entity_type: str, *, client=None) -> Adapter:
    provider = integration.provider_info
    if not provider.adapter:
        raise AdapterConfigError(f"provider {provider.slug!r} has no inbound adapter")
    cls = import_string(provider.adapter)
    return cls(integration, entity_type, client=client)
