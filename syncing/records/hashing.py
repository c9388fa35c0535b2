"""Stable record ids and content hashes (identical in both record stores)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable

# Fixed namespace: changing it would re-key every stored record.
RECORD_NAMESPACE = uuid.UUID("5b0d7c3e-58a4-4d8e-9d0f-6a1f3c2e9b71")


def record_id(tenant_id, integration_id, entity_type: str, external_id: str) -> uuid.UUID:
    """uuid5 of tenant/integration/entity/external id: the same remote object, the same id."""
    return uuid.uuid5(RECORD_NAMESPACE, f"{tenant_id}/{integration_id}/{entity_type}/{external_id}")


def record_ids(tenant_id, integration_id, entity_type: str) -> Callable[[str], uuid.UUID]:
    """:func:`record_id` of one scope, as a function of the external id: the same ids, with
    the namespace and the scope's part of the name hashed once (uuid5 is SHA-1 over both)
    instead of for every record (4.2 → 1.6 µs a record; the pipeline maps a page with it)."""
    scope = hashlib.sha1(  # noqa: S324 - uuid5's hash, not a security one
        RECORD_NAMESPACE.bytes + f"{tenant_id}/{integration_id}/{entity_type}/".encode()
    )

    def of(external_id: str) -> uuid.UUID:
        digest = scope.copy()
        digest.update(external_id.encode())
        return uuid.UUID(bytes=digest.digest()[:16], version=5)

    return of


# What json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=str) builds on every call, built once: the same bytes, ~1 µs less per record.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)
# And the C encoder that JSONEncoder.encode builds again on every call (~0.8 µs of ~2.4 per
# record, docs/benchmarks.md "Session 8"): the same function with the same options, so the
# same bytes. Without the circular-reference bookkeeping: records are decoded JSON, which
# cannot be circular.
_C_ENCODER = (
    json.encoder.c_make_encoder(
        None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def canonical_json(data) -> str:
    if _C_ENCODER is None or isinstance(data, str):
        return _CANONICAL.encode(data)
    return "".join(_C_ENCODER(data, 0))


def content_hash(data) -> str:
    return hashed(data)[1]


def hashed(data) -> tuple[str, str]:
    """(canonical JSON, content hash) of ``data``. The JSON is valid JSON of the same value,
    which the ORM store's COPY sends as the record's data instead of encoding it again
    (jsonb keeps no key order, so the stored value is the same)."""
    text = canonical_json(data)
    return text, hashlib.sha256(text.encode()).hexdigest()
