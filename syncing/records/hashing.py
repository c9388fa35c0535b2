"""Stable record ids and content hashes (identical in both record stores)."""

from __future__ import annotations

import hashlib
import json
import uuid

# Fixed namespace: changing it would re-key every stored record.
RECORD_NAMESPACE = uuid.UUID("5b0d7c3e-58a4-4d8e-9d0f-6a1f3c2e9b71")


def record_id(tenant_id, integration_id, entity_type: str, external_id: str) -> uuid.UUID:
    """uuid5 of tenant/integration/entity/external id: the same remote object, the same id."""
    return uuid.uuid5(RECORD_NAMESPACE, f"{tenant_id}/{integration_id}/{entity_type}/{external_id}")


# What json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=str) builds on every call, built once: the same bytes, ~1 µs less per record.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def canonical_json(data) -> str:
    return _CANONICAL.encode(data)


def content_hash(data) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
