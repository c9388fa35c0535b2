"""The Azure Cosmos DB record store (``CASTIEL_RECORD_STORE=cosmos``, SDK ``azure-cosmos``).

Over 400 lines on purpose: one class, the whole ``RecordStore`` contract over one SDK; every
method goes through its shared connection and outage handling (``_run``).

One container, partition key ``/tenant_id``: every query is single-partition (it passes
``partition_key`` and, as the service requires when it does, also filters on ``c.tenant_id``).
Documents use the record's stable uuid5 as ``id``, so replays of a page land on the same
documents. Updates are optimistic: ``replace_item`` with the ``_etag`` read and
``MatchConditions.IfNotModified`` (HTTP 412 → :class:`StaleRecordError`); inserts use
``create_item`` (409 → stale as well: someone created it since we looked).

Reads go through queries rather than point reads: besides being what the pipeline needs (many
ids per page), this keeps the store clear of the emulator's 500-instead-of-404 on missing
items. No transactional batch is used (a page is idempotent, not atomic, in this store: see
``syncing/records/stores/base.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlparse
from uuid import UUID

from azure.core import MatchConditions
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.cosmos import CosmosClient, PartitionKey, exceptions
from django.conf import settings

from syncing.records.stores.base import (
    RecordRef,
    RecordStore,
    RecordStoreUnavailable,
    StaleRecordError,
    StoredRecord,
)

T = TypeVar("T")
# Answers that mean "not now" rather than "wrong": request timeout, throttled past the SDK's
# own retries, service unavailable.
UNAVAILABLE_STATUSES = {408, 429, 503}
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
        **({"feed_intent": record.feed_intent} if record.feed_intent else {}),
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
        feed_intent=doc.get("feed_intent"),
        **{name: _parse_dt(doc.get(name)) for name in _DATETIME_FIELDS},
    )


def _params(**values) -> list[dict]:
    return [{"name": f"@{k}", "value": v} for k, v in values.items()]


class CosmosRecordStore(RecordStore):
    """The store opens its client, database and container lazily, on first use: Castiel
    starts (and ``/healthz`` answers, degraded) while Cosmos DB is unreachable.

    Every operation goes through :meth:`_run`, which turns connection errors, timeouts and
    408/429/503 answers into :class:`RecordStoreUnavailable`, and recreates the database and
    container (once, then retries the operation) when a 404 turns out to mean that the
    container itself is gone — not just an item — so a deleted container comes back without
    a restart. Creation is race-free across processes: ``create_*_if_not_exists`` reads then
    creates, so two workers starting together can both see "missing" and one of the creates
    answers 409; that is success (someone else created it).
    """

    name = "cosmos"

    def __init__(
        self,
        *,
        endpoint: str,
        key: str,
        database: str,
        container: str,
        timeout: float = 5.0,
        endpoint_discovery: bool = True,
    ):
        self.endpoint = endpoint
        self.database_name = database
        self.container_name = container
        self._key = key
        self._timeout = timeout
        self._endpoint_discovery = endpoint_discovery
        self._client: CosmosClient | None = None
        self._database = None
        self._container = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> CosmosRecordStore:
        return cls(
            endpoint=settings.CASTIEL_COSMOS_ENDPOINT,
            key=settings.CASTIEL_COSMOS_KEY,
            database=settings.CASTIEL_COSMOS_DATABASE,
            container=settings.CASTIEL_COSMOS_CONTAINER,
            timeout=settings.CASTIEL_COSMOS_TIMEOUT_SECONDS,
            endpoint_discovery=settings.CASTIEL_COSMOS_ENDPOINT_DISCOVERY,
        )

    def describe(self) -> str:
        host = urlparse(self.endpoint).netloc or self.endpoint
        return f"cosmos ({host}, {self.database_name}/{self.container_name})"

    # -- connection ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _unavailable_errors(self):
        try:
            yield
        except (
            ServiceRequestError,
            ServiceResponseError,
            exceptions.CosmosClientTimeoutError,
        ) as exc:
            raise RecordStoreUnavailable(self.name, _reason(exc)) from exc
        except exceptions.CosmosHttpResponseError as exc:
            if exc.status_code in UNAVAILABLE_STATUSES:
                raise RecordStoreUnavailable(
                    self.name, f"HTTP {exc.status_code}", retry_after=_retry_after(exc)
                ) from exc
            raise

    def _open(self):
        """The container, creating the database and container when missing (race-free)."""
        with self._lock:
            if self._container is not None:
                return self._container
            with self._unavailable_errors():
                if self._client is None:
                    self._client = CosmosClient(
                        self.endpoint,
                        credential=self._key,
                        connection_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retry_connect=1,
                        retry_read=1,
                        enable_endpoint_discovery=self._endpoint_discovery,
                    )
                client = self._client
                database = _exists_is_fine(
                    lambda: client.create_database_if_not_exists(self.database_name),
                    lambda: client.get_database_client(self.database_name),
                )
                container = _exists_is_fine(
                    lambda: database.create_container_if_not_exists(
                        self.container_name, partition_key=PartitionKey(path="/tenant_id")
                    ),
                    lambda: database.get_container_client(self.container_name),
                )
            self._database, self._container = database, container
            return container

    @property
    def database(self):
        self._open()
        return self._database

    @property
    def container(self):
        return self._open()

    def _run(self, operation: Callable[[object], T]) -> T:
        """``operation(container)``, errors translated; a vanished container is recreated
        once and the operation retried."""
        container = self._open()
        try:
            with self._unavailable_errors():
                return operation(container)
        except exceptions.CosmosResourceNotFoundError:
            if not self._container_gone(container):
                raise  # an item is missing, not the container
        with self._lock:
            if self._container is container:
                self._container = None
        container = self._open()
        with self._unavailable_errors():
            return operation(container)

    def _container_gone(self, container) -> bool:
        with self._unavailable_errors():
            try:
                container.read()
            except exceptions.CosmosResourceNotFoundError:
                return True
        return False

    def ping(self) -> None:
        self._run(lambda container: container.read())

    def drop_container(self) -> None:
        with self._unavailable_errors():
            self.database.delete_container(self.container_name)
        with self._lock:
            self._container = None

    def _query(self, tenant_id, sql: str, **params) -> list[dict]:
        return self._run(
            lambda container: list(
                container.query_items(
                    sql,
                    parameters=_params(t=str(tenant_id), **params),
                    partition_key=str(tenant_id),
                )
            )
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
            self._run(lambda c: c.delete_item(str(record_id), partition_key=str(tenant_id)))
        except exceptions.CosmosResourceNotFoundError:
            pass

    # -- pipeline writes -------------------------------------------------------------------

    def write(self, scope, creates, updates):
        stale = []
        for record in creates:
            doc = to_document(record)
            try:
                self._run(lambda c, doc=doc: c.create_item(doc))
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
        doc = to_document(record)
        try:
            return self._run(lambda c: c.replace_item(str(record.id), doc, **kwargs))
        except exceptions.CosmosAccessConditionFailedError:
            raise StaleRecordError([record.id]) from None

    def mark_seen(self, scope, ids, generation):
        operations = [{"op": "set", "path": "/seen_generation", "value": generation}]
        for record_id in ids:
            self._run(
                lambda c, rid=str(record_id): c.patch_item(
                    rid, partition_key=str(scope.tenant_id), patch_operations=operations
                )
            )

    def soft_delete_unseen(self, scope, generation, at):
        docs = self._query(
            scope.tenant_id,
            "SELECT c.id, c.external_id, c.version FROM c WHERE c.tenant_id = @t "
            "AND c.scope = @s AND c.deleted_at = null AND c.seen_generation < @g",
            s=f"{scope.integration_id}/{scope.entity_type}",
            g=generation,
        )
        gone = []
        for doc in docs:
            version = int(doc.get("version") or 1) + 1
            operations = [
                {"op": "set", "path": "/deleted_at", "value": at.isoformat()},
                {"op": "set", "path": "/synced_at", "value": at.isoformat()},
                {"op": "set", "path": "/version", "value": version},
            ]
            self._run(
                lambda c, rid=doc["id"], ops=operations: c.patch_item(
                    rid, partition_key=str(scope.tenant_id), patch_operations=ops
                )
            )
            gone.append(
                RecordRef(
                    UUID(doc["id"]),
                    scope.tenant_id,
                    scope.integration_id,
                    scope.entity_type,
                    doc["external_id"],
                    version,
                )
            )
        return gone

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
        docs = self._run(
            lambda c: list(
                c.query_items(
                    "SELECT * FROM c WHERE c.id = @id",
                    parameters=_params(id=str(record_id)),
                    enable_cross_partition_query=True,
                )
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
        # Only fixed clause strings are joined; every value is a query parameter.
        sql = f"SELECT * FROM c WHERE {' AND '.join(clauses)} ORDER BY c.id"  # noqa: S608

        def one_page(container):
            pager = container.query_items(
                sql,
                parameters=_params(t=str(tenant_id), **params),
                partition_key=str(tenant_id),
                max_item_count=page_size,
            ).by_page(continuation)
            try:
                docs = list(next(pager))
            except StopIteration:
                return [], None
            return docs, pager.continuation_token

        docs, token = self._run(one_page)
        return [to_stored(doc) for doc in docs], token

    def save_record(self, record):
        return to_stored(self._replace(record))


def _exists_is_fine(create: Callable[[], T], existing: Callable[[], T]) -> T:
    """``create_*_if_not_exists`` reads, then creates: another process can create it in
    between, and its 409 means the resource is there — which is all we asked for."""
    try:
        return create()
    except exceptions.CosmosResourceExistsError:
        return existing()


def _reason(exc: Exception) -> str:
    # The exception text names the host and port, never the key (it is a header).
    return (
        f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
        if str(exc)
        else (exc.__class__.__name__)
    )


def _retry_after(exc) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name in ("x-ms-retry-after-ms", "Retry-After"):
        try:
            value = float(headers.get(name))
        except (TypeError, ValueError):
            continue
        return value / 1000 if name.endswith("-ms") else value
    return None
