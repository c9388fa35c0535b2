"""The adapter contract: fetch one page of an entity given a cursor, map it to local fields, and
push single records back (create / update / delete / get one).

* :mod:`integrations.adapters.base` — :class:`Page`, :class:`Adapter`, typed adapter errors.
* :mod:`integrations.adapters.pagination` — cursor, offset, page-number, ``Link`` header and
  since-timestamp pagination, shared by every REST adapter.
* :mod:`integrations.adapters.mapping` — per-task field mapping with small transforms.
* :mod:`integrations.adapters.rest` — the generic REST adapter (configured per integration).

``adapter_for(integration, entity_type)`` builds the adapter a provider declares
(``ProviderInfo.adapter``), with the integration's outbound client.
"""

from integrations.adapters.base import (
    Adapter,
    AdapterConfigError,
    AdapterError,
    InvalidCursor,
    MalformedPage,
    Page,
    PushNotSupported,
    PushResult,
    RateLimitInfo,
    RemoteChanged,
    adapter_for,
)
from integrations.adapters.mapping import FieldMapping, MappingError

__all__ = [
    "Adapter",
    "AdapterConfigError",
    "AdapterError",
    "FieldMapping",
    "InvalidCursor",
    "MalformedPage",
    "MappingError",
    "Page",
    "PushNotSupported",
    "PushResult",
    "RateLimitInfo",
    "RemoteChanged",
    "adapter_for",
]
