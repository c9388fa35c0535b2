"""The Azure Cosmos DB record store (``CASTIEL_RECORD_STORE=cosmos``, SDK ``azure-cosmos``).

One container, partition key ``/tenant_id``: every query is single-partition (it passes
``partition_key`` and, as the service requires when it does, also filters on ``c.tenant_id``).
Documents use the record's stable uuid5 as ``id``, so replays of a page land on the same
documents. Updates are optimistic: ``replace_item`` with the ``_etag`` read and
``MatchConditions.IfNotModified`` (HTTP 412 → :class:`StaleRecordError`); inserts use
``create_item`` (409 → stale as well: someone created it since we looked).

Reads go through queries rather than point reads: besides being what the pipeline needs (many
ids per page), this keeps the store clear of the emulator's 500-instead-of-404 on missing
items. No transactional batch is used (a page is idempotent, not atomic, in this store: see
``syncing/stores/base.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from azure.core import MatchConditions
from azure.cosmos import CosmosClient, PartitionKey, exceptions
from django.conf import settings

from syncing.stores.base import RecordStore, StaleRecordError, StoredRecord

ID_CHUNK = 100  # ids per ARRAY_CONTAINS query parameter
_DATETIME_FIELDS = (
    "remote_updated_at",
    "local_updated_at",
    "deleted_at",
    "synced_at",
    "created_at",
)


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def to_document(record: StoredRecord) -> dict:
    return {
        "id": str(record.id),
        "tenant_id": str(record.tenant_id),
        "integration_id": str(record.integration_id),
        "entity_type": record.entity_type,
        "scope": f"{record.integration_id}/{record.entity_type}",
        "external_id": record.external_id,
        "data": record.data,
        "content_hash": record.content_hash,
        "base_data": record.base_data,
        "base_hash": record.base_hash,
        "version": record.version,
        "remote_version": record.remote_version,
        "last_pushed_hash": record.last_pushed_hash,
        "match_keys": list(record.match_keys),
        "seen_generation": record.seen_generation,
        **{name: _dt(getattr(record, name)) for name in _DATETIME_FIELDS},
    }


def to_stored(doc: dict) -> StoredRecord:
    return StoredRecord(
        id=UUID(doc["id"]),
        tenant_id=UUID(doc["tenant_id"]),
        integration_id=UUID(doc["integration_id"]),
        entity_type=doc["entity_type"],
        external_id=doc["external_id"],
        data=doc["data"],
        content_hash=doc["content_hash"],
        base_data=doc.get("base_data") or {},
        base_hash=doc.get("base_hash") or "",
        version=doc.get("version", 1),
        remote_version=doc.get("remote_version") or "",
        last_pushed_hash=doc.get("last_pushed_hash") or "",
        match_keys=list(doc.get("match_keys") or []),
        seen_generation=doc.get("seen_generation", 0),
        etag=doc.get("_etag"),
        **{name: _parse_dt(doc.get(name)) for name in _DATETIME_FIELDS},
    )


def _params(**values) -> list[dict]:
    return [{"name": f"@{k}", "value": v} for k, v in values.items()]


class CosmosRecordStore(RecordStore):
    name = "cosmos"

    def __init__(self, *, endpoint: str, key: str, database: str, container: str):
        self.client = CosmosClient(endpoint, credential=key)
        self.database = self.client.create_database_if_not_exists(database)
        self.container = self.database.create_container_if_not_exists(
            container, partition_key=PartitionKey(path="/tenant_id")
        )

    @classmethod
    def from_settings(cls) -> CosmosRecordStore:
        return cls(
            endpoint=settings.CASTIEL_COSMOS_ENDPOINT,
            key=settings.CASTIEL_COSMOS_KEY,
            database=settings.CASTIEL_COSMOS_DATABASE,
            container=settings.CASTIEL_COSMOS_CONTAINER,
        )

    def drop_container(self) -> None:
        self.database.delete_container(self.container)

    def _query(self, tenant_id, sql: str, **params) -> Iterator[dict]:
        return self.container.query_items(
            sql, parameters=_params(t=str(tenant_id), **params), partition_key=str(tenant_id)
        )

    # -- pipeline reads --------------------------------------------------------------------

    def get_many(self, scope, ids, *, lock=False):
        # No locks in Cosmos DB: the etag read here makes the later replace conditional.
        ids = [str(i) for i in ids]
        found = {}
        for start in range(0, len(ids), ID_CHUNK):
            for doc in self._query(
                scope.tenant_id,
                "SELECT * FROM c WHERE c.tenant_id = @t AND c.scope = @s "
                "AND ARRAY_CONTAINS(@ids, c.id)",
                s=f"{scope.integration_id}/{scope.entity_type}",
                ids=ids[start : start + ID_CHUNK],
            ):
                record = to_stored(doc)
                found[record.id] = record
        return found

    def find_by_keys(self, scope, keys):
        keys = sorted(set(keys))
        found: dict[str, set[UUID]] = {}
        for start in range(0, len(keys), ID_CHUNK):
            chunk = keys[start : start + ID_CHUNK]
            wanted = set(chunk)
            for doc in self._query(
                scope.tenant_id,
                "SELECT c.id, c.match_keys FROM c WHERE c.tenant_id = @t AND c.scope = @s "
                "AND c.deleted_at = null "
                "AND EXISTS(SELECT VALUE k FROM k IN c.match_keys WHERE ARRAY_CONTAINS(@keys, k))",
                s=f"{scope.integration_id}/{scope.entity_type}",
                keys=chunk,
            ):
                for key in set(doc.get("match_keys") or []) & wanted:
                    found.setdefault(key, set()).add(UUID(doc["id"]))
        return found

    def find_by_external_ids(self, scope, external_ids, *, lock=False):
        external_ids = sorted(set(external_ids))
        found = {}
        for start in range(0, len(external_ids), ID_CHUNK):
            for doc in self._query(
                scope.tenant_id,
                "SELECT * FROM c WHERE c.tenant_id = @t AND c.scope = @s "
                "AND ARRAY_CONTAINS(@ext, c.external_id)",
                s=f"{scope.integration_id}/{scope.entity_type}",
                ext=external_ids[start : start + ID_CHUNK],
            ):
                record = to_stored(doc)
                found[record.external_id] = record
        return found

    def remove(self, tenant_id, record_id):
        try:
            self.container.delete_item(str(record_id), partition_key=str(tenant_id))
        except exceptions.CosmosResourceNotFoundError:
            pass

    # -- pipeline writes -------------------------------------------------------------------

    def write(self, scope, creates, updates):
        stale = []
        for record in creates:
            try:
                self.container.create_item(to_document(record))
            except exceptions.CosmosResourceExistsError:
                stale.append(record.id)
        for record in updates:
            try:
                self._replace(record)
            except StaleRecordError:
                stale.append(record.id)
        if stale:
            raise StaleRecordError(stale)

    def _replace(self, record: StoredRecord) -> dict:
        kwargs = {}
        if record.etag:
            kwargs = {"etag": record.etag, "match_condition": MatchConditions.IfNotModified}
        try:
            return self.container.replace_item(str(record.id), to_document(record), **kwargs)
        except exceptions.CosmosAccessConditionFailedError:
            raise StaleRecordError([record.id]) from None

    def mark_seen(self, scope, ids, generation):
        for record_id in ids:
            self.container.patch_item(
                str(record_id),
                partition_key=str(scope.tenant_id),
                patch_operations=[{"op": "set", "path": "/seen_generation", "value": generation}],
            )

    def soft_delete_unseen(self, scope, generation, at):
        ids = [
            doc["id"]
            for doc in self._query(
                scope.tenant_id,
                "SELECT c.id FROM c WHERE c.tenant_id = @t AND c.scope = @s "
                "AND c.deleted_at = null AND c.seen_generation < @g",
                s=f"{scope.integration_id}/{scope.entity_type}",
                g=generation,
            )
        ]
        for record_id in ids:
            self.container.patch_item(
                record_id,
                partition_key=str(scope.tenant_id),
                patch_operations=[
                    {"op": "set", "path": "/deleted_at", "value": at.isoformat()},
                    {"op": "set", "path": "/synced_at", "value": at.isoformat()},
                ],
            )
        return len(ids)

    # -- API / admin / tests -----------------------------------------------------------------

    def get(self, tenant_id, record_id):
        docs = list(
            self._query(
                tenant_id,
                "SELECT * FROM c WHERE c.tenant_id = @t AND c.id = @id",
                id=str(record_id),
            )
        )
        return to_stored(docs[0]) if docs else None

    def find(self, record_id):
        # Across partitions (the tenant is the partition key): operators' record pages only.
        docs = list(
            self.container.query_items(
                "SELECT * FROM c WHERE c.id = @id",
                parameters=_params(id=str(record_id)),
                enable_cross_partition_query=True,
            )
        )
        return to_stored(docs[0]) if docs else None

    def iter_scope(self, scope, *, include_deleted=False):
        sql = "SELECT * FROM c WHERE c.tenant_id = @t AND c.scope = @s"
        if not include_deleted:
            sql += " AND c.deleted_at = null"
        for doc in self._query(
            scope.tenant_id, sql + " ORDER BY c.id", s=f"{scope.integration_id}/{scope.entity_type}"
        ):
            yield to_stored(doc)

    def list_page(
        self,
        tenant_id,
        *,
        integration_id=None,
        entity_type=None,
        include_deleted=False,
        page_size=50,
        continuation=None,
    ):
        clauses, params = ["c.tenant_id = @t"], {}
        if integration_id:
            clauses.append("c.integration_id = @i")
            params["i"] = str(integration_id)
        if entity_type:
            clauses.append("c.entity_type = @e")
            params["e"] = entity_type
        if not include_deleted:
            clauses.append("c.deleted_at = null")
        pager = self.container.query_items(
            # Only fixed clause strings are joined; every value is a query parameter.
            f"SELECT * FROM c WHERE {' AND '.join(clauses)} ORDER BY c.id",  # noqa: S608
            parameters=_params(t=str(tenant_id), **params),
            partition_key=str(tenant_id),
            max_item_count=page_size,
        ).by_page(continuation)
        try:
            page = [to_stored(doc) for doc in next(pager)]
        except StopIteration:
            return [], None
        return page, pager.continuation_token

    def save_record(self, record):
        return to_stored(self._replace(record))
