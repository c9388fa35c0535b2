"""The record store interface: where synced entities live (ORM or Azure Cosmos DB).

Both stores hold the same :class:`StoredRecord` shape under the same stable id (uuid5 of
tenant/integration/entity/external id) and pass one shared test suite
(``tests/syncing/records/test_stores.py``). The inbound pipeline only talks to this interface.

Transactions: the ORM store's writes join the page transaction (records and cursor checkpoint
commit together). Cosmos DB cannot join a relational transaction, so the worker writes a
page's records first and commits the checkpoint after; a crash in between replays the page,
which is harmless because writes are idempotent (same content hash → no change).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from castiel.unavailable import TemporarilyUnavailable
from syncing.records.hashing import content_hash


@dataclass(frozen=True)
class Scope:
    """The records one sync task owns."""

    tenant_id: UUID
    integration_id: UUID
    entity_type: str


@dataclass
class StoredRecord:
    id: UUID
    tenant_id: UUID
    integration_id: UUID
    entity_type: str
    external_id: str
    data: dict
    content_hash: str
    base_data: dict = field(default_factory=dict)
    base_hash: str = ""
    remote_updated_at: datetime | None = None
    remote_version: str = ""
    local_updated_at: datetime | None = None
    version: int = 1
    deleted_at: datetime | None = None
    last_pushed_hash: str = ""
    match_keys: list[str] = field(default_factory=list)
    seen_generation: int = 0
    synced_at: datetime | None = None
    created_at: datetime | None = None
    # Store concurrency token (Cosmos ``_etag``; the ORM uses ``version``).
    etag: str | None = None
    # Stores outside the database transaction: the history row this write is owed, written
    # with the record (syncing/records/history_repair.py). None elsewhere.
    feed_intent: dict | None = None
    # ``data`` as JSON text, when the pipeline already built it (the canonical JSON of its
    # content hash): the ORM store's COPY sends it rather than encoding the data again.
    # Dropped by copy() when the data changes.
    data_json: str | None = field(default=None, compare=False, repr=False)

    @property
    def locally_modified(self) -> bool:
        """Changed locally since the last sync (local copy differs from the synced base)."""
        return bool(self.base_hash) and self.content_hash != self.base_hash

    def copy(self, **changes) -> StoredRecord:
        if "data" in changes and "data_json" not in changes:
            changes["data_json"] = None
        return replace(self, **changes)

    def stored_base(self) -> dict | None:
        """The base as the ORM store keeps it: None when it is the data (the same content
        hash: no local edit since the last sync — most records), so a record is not stored
        twice; the store reads None back as the data."""
        if self.base_hash and self.base_hash == self.content_hash:
            return None
        return self.base_data


@dataclass(frozen=True)
class RecordRef:
    """A record's identity and version: what bulk deletes report (for its history and the
    change feed)."""

    id: UUID
    tenant_id: UUID
    integration_id: UUID
    entity_type: str
    external_id: str
    version: int


class StaleRecordError(Exception):
    """Optimistic concurrency: someone changed these records after we read them."""

    def __init__(self, ids: Iterable[UUID]):
        self.ids = set(ids)
        super().__init__(f"{len(self.ids)} record(s) changed concurrently")


class RecordStoreUnavailable(TemporarilyUnavailable):
    """The record store cannot be reached right now (connection refused or cut, a timeout,
    503/429 after the SDK's own retries). Nothing about the request was wrong: try again
    later. The API answers 503 ``record_store_unavailable`` with ``Retry-After``, the admin a
    page saying so, a sync run retries with backoff from its checkpoint and a webhook event is
    retried; ``/healthz`` reports the store degraded. Raised by stores outside the database
    (Cosmos DB); the ORM store's failures are the database's."""

    code = "record_store_unavailable"
    message = "The record store is unavailable right now; retry after the indicated delay."

    def __init__(self, store: str, reason: str, *, retry_after: float | None = None):
        self.store = store
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"the {store} record store is unavailable: {reason}")

    def details(self) -> dict:
        return {"store": self.store}


class RecordStore:
    name = "base"

    def describe(self) -> str:
        """What the start-up banner, /healthz and the admin call this store (no secrets)."""
        return self.name

    def ping(self) -> None:
        """Raise RecordStoreUnavailable when the store cannot be reached (/healthz)."""

    # Whether the store's writes are part of the relational database transaction (then a
    # rollback undoes them; syncing.outbound.local_changes undoes them itself otherwise).
    joins_transaction = False

    def atomic(self):
        """Context manager the page's writes run in (a DB transaction for the ORM store)."""
        return contextlib.nullcontext()

    # -- reads used by the pipeline -----------------------------------------------------------

    def get_many(self, scope: Scope, ids: Iterable[UUID], *, lock: bool = False) -> dict:
        raise NotImplementedError

    def find_by_keys(self, scope: Scope, keys: Iterable[str]) -> dict[str, set[UUID]]:
        """Live (not deleted) records carrying each dedup key."""
        raise NotImplementedError

    def find_by_external_ids(
        self, scope: Scope, external_ids: Iterable[str], *, lock: bool = False
    ) -> dict[str, StoredRecord]:
        """Records by external id. A record created locally keeps the id it was given
        before the provider assigned its external id (the outbound push fills that in), so
        its id is not uuid5 of its external id and the pull finds it here."""
        raise NotImplementedError

    # -- writes used by the pipeline ----------------------------------------------------------

    def write(self, scope: Scope, creates: list[StoredRecord], updates: list[StoredRecord]):
        """Insert ``creates`` and replace ``updates`` (raising StaleRecordError on a race)."""
        raise NotImplementedError

    def mark_seen(self, scope: Scope, ids: Iterable[UUID], generation: int) -> None:
        raise NotImplementedError

    def soft_delete_unseen(self, scope: Scope, generation: int, at: datetime) -> list[RecordRef]:
        """Full refresh: soft-delete live records not seen in ``generation`` (each one
        version on); return them (the caller writes their history)."""
        raise NotImplementedError

    # -- reads for the API, admin and tests -----------------------------------------------------

    def get(self, tenant_id: UUID, record_id: UUID) -> StoredRecord | None:
        raise NotImplementedError

    def find(self, record_id: UUID) -> StoredRecord | None:
        """A record by id alone, whatever its tenant (the admin's record pages, whose URLs
        carry only the id). Not for tenant-facing reads: those use :meth:`get`."""
        raise NotImplementedError

    def iter_scope(self, scope: Scope, *, include_deleted: bool = False) -> Iterator[StoredRecord]:
        raise NotImplementedError

    def list_page(
        self,
        tenant_id: UUID,
        *,
        integration_id: UUID | None = None,
        entity_type: str | None = None,
        include_deleted: bool = False,
        page_size: int = 50,
        continuation: str | None = None,
    ) -> tuple[list[StoredRecord], str | None]:
        raise NotImplementedError

    # -- local changes (API edits, conflict resolution, the outbound push) --------------------

    def save_record(self, record: StoredRecord) -> StoredRecord:
        """Replace one record (optimistic: StaleRecordError if it changed since read)."""
        self.write(_scope_of(record), [], [record])
        return self.get(record.tenant_id, record.id)

    def local_edit(self, tenant_id: UUID, record_id: UUID, data: dict, *, at: datetime):
        """A local change to a record's data (what the API/outbound work will call)."""
        record = self.get(tenant_id, record_id)
        if record is None:
            raise KeyError(record_id)
        edited = record.copy(
            data=data,
            content_hash=content_hash(data),
            local_updated_at=at,
            version=record.version + 1,
        )
        return self.save_record(edited)

    def create_record(self, record: StoredRecord) -> StoredRecord:
        """Insert one new record (a local create)."""
        self.write(_scope_of(record), [record], [])
        return self.get(record.tenant_id, record.id)

    def remove(self, tenant_id: UUID, record_id: UUID) -> None:
        """Delete a record for good (a duplicate the outbound push found; see mark_pushed)."""
        raise NotImplementedError

    def mark_pushed_many(self, pushes: list[dict]) -> list[bool]:
        """:meth:`mark_pushed` for a group of push results (each dict its keyword arguments),
        applied in order; per push whether the record's data became its ``remote``. A record
        that no longer exists locally is skipped (False): its change is done all the same.

        Stores that cannot write conditionally see a local edit racing the result as
        ``StaleRecordError`` and apply the push again on the record as it is now."""
        return [self._mark_pushed_retrying(push) for push in pushes]

    def _mark_pushed_retrying(self, push: dict) -> bool:
        for _ in range(5):
            try:
                return self.mark_pushed(**push)
            except StaleRecordError:
                continue  # a local edit landed meanwhile
            except KeyError:
                return False
        raise StaleRecordError([push["record_id"]])

    def mark_pushed(
        self,
        tenant_id: UUID,
        record_id: UUID,
        pushed_hash: str,
        *,
        remote: dict | None = None,
        local_hash: str | None = None,
        keep_local: bool = False,
        external_id: str | None = None,
        remote_version: str | None = None,
        remote_updated_at: datetime | None = None,
    ) -> bool:
        """Remember what the outbound push sent, so the next pull sees its echo as ours.

        ``pushed_hash`` is the content hash of the record as the provider now holds it (the
        mapped write response), which is exactly what the next pull will bring. With
        ``remote`` (that mapped record) the push result also becomes the record's *base* —
        the provider accepted it, so a later remote edit is a plain update, not a conflict —
        and its data when the local copy is still the one the push read (``local_hash``); a
        local edit made meanwhile is kept (its own outbound change pushes it next).
        ``keep_local``: the record holds local edits the push did not send (a later change of
        the record, written before the push read it): the data stays as it is whatever its
        hash, and only the base moves — the provider's answer must not overwrite them.
        ``external_id``: the id the provider gave a record created locally; a duplicate of the
        record under that id (stored by a pull meanwhile) is removed, and its removal
        recorded in the history (the change feed tells readers it is gone).

        Returns whether the record's data became ``remote`` (False: no ``remote``, or a
        local edit came in meanwhile and was kept).
        """
        record = self.get(tenant_id, record_id)
        if record is None:
            raise KeyError(record_id)
        changes: dict = {"last_pushed_hash": pushed_hash}
        took_remote = False
        if remote is not None:
            changes.update(base_data=remote, base_hash=pushed_hash)
            if not keep_local and local_hash in (None, record.content_hash):
                changes.update(data=remote, content_hash=pushed_hash)
                took_remote = True
        if external_id:
            changes["external_id"] = external_id
        if remote_version is not None:
            changes["remote_version"] = remote_version
        if remote_updated_at is not None:
            changes["remote_updated_at"] = remote_updated_at
        if external_id and external_id != record.external_id:
            # A pull may have stored the provider's copy of this very record while the
            # create's answer was outstanding (a timeout, then a retry): that copy is a
            # duplicate of ours, which keeps its id.
            scope = _scope_of(record)
            twin = self.find_by_external_ids(scope, [external_id]).get(external_id)
            if twin is not None and twin.id != record.id:
                self.remove(tenant_id, twin.id)
                _twins_removed([twin])
        self.save_record(record.copy(**changes))
        return took_remote


def _twins_removed(twins) -> None:
    from syncing.records import history

    history.removed(twins, source=history.Source.PUSH)


def _scope_of(record: StoredRecord) -> Scope:
    return Scope(record.tenant_id, record.integration_id, record.entity_type)
