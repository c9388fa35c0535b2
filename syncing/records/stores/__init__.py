"""Record stores: ``get_store()`` returns the configured one (``CASTIEL_RECORD_STORE``)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from syncing.records.stores.base import (
    RecordStore,
    RecordStoreUnavailable,
    Scope,
    StaleRecordError,
    StoredRecord,
)

__all__ = [
    "RecordStore",
    "RecordStoreUnavailable",
    "Scope",
    "StaleRecordError",
    "StoredRecord",
    "external_store",
    "get_store",
]


@lru_cache(maxsize=1)
def _configured(kind: str) -> RecordStore:
    if kind == "cosmos":
        from syncing.records.stores.cosmos import CosmosRecordStore

        return CosmosRecordStore.from_settings()
    from syncing.records.stores.orm import OrmRecordStore

    return OrmRecordStore()


def get_store() -> RecordStore:
    return _configured(settings.CASTIEL_RECORD_STORE)


def external_store() -> RecordStore | None:
    """The configured store when its records live outside the database (Cosmos DB), else None.

    The records API and admin then read it instead of the ``Record`` table."""
    store = get_store()
    return None if store.joins_transaction else store
