"""The per-page inbound pipeline: map → dedup → conflict check → bulk upsert.

:class:`PagePipeline` is built once per run and applied to each page inside the worker's page
transaction (see :mod:`syncing.inbound.worker`), which also writes the cursor checkpoint. It
decides, for every remote record, one outcome:

created · updated · unchanged (same content, or a stale/out-of-order version) · deleted
(tombstone) · echo (the record came back exactly as Castiel pushed it: not a remote change,
not a conflict) · conflict (both sides changed; resolved by the task's strategy, or a
``Conflict`` row for manual review that leaves the record untouched) · error (unmappable).

:func:`pipeline_for_task` is the one place a task's pipeline is built — by the pull worker,
the webhook follow-ups, the dry run and (through the dry run) the API — so a provider object
is mapped, hashed and matched the same way whichever path brings it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.utils import timezone

from integrations.adapters.mapping import FieldMapping, MappingError, RecordMappingError
from integrations.adapters.normalize import parse_timestamp
from syncing.inbound import conflicts as conflict_rules
from syncing.inbound.dedup import (
    Decision,
    DedupConfigError,
    Incoming,
    Strategy,
    deduplicate,
    strategy_for,
)
from syncing.models import Conflict, OutboundChange, SyncRun, SyncTask
from syncing.records import history, history_repair, outbox
from syncing.records.diff import changed_fields, conflicting_fields
from syncing.records.hashing import content_hash, hashed, record_ids
from syncing.records.notices import conflicts_waiting
from syncing.records.stores.base import RecordStore, Scope, StaleRecordError, StoredRecord

MAX_ERROR_SAMPLES = 5
OUTCOMES = SyncRun.OUTCOME_COUNTERS


@dataclass
class PageResult:
    counts: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    max_updated_at: datetime | None = None
    # The provider's own spelling of that timestamp: providers such as json-server compare
    # updated-at filters as strings, so the watermark must keep their format.
    max_updated_raw: str | None = None


@dataclass
class MappedPage:
    """A page's records mapped, hashed and given their ids: everything about a page that needs
    neither the database nor the page before it (so the read-ahead can do it early)."""

    incoming: list[Incoming]
    result: PageResult


def _copy_result(result: PageResult) -> PageResult:
    return replace(
        result, counts=Counter(result.counts), rules=Counter(result.rules), errors=[*result.errors]
    )


class PipelineConfigError(ValueError):
    """The task's configuration cannot build a pipeline (``code`` is the run's error code)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def pipeline_for_task(
    task: SyncTask,
    *,
    adapter,
    store: RecordStore,
    generation: int | None = None,
    run=None,
    source: tuple[str, str] | None = None,
) -> PagePipeline:
    """The task's page pipeline: its field mapping, its dedup strategy (told which mapped
    fields are the provider's identity and timestamp fields, which content dedup ignores) and
    its conflict rules, over ``adapter`` (the task's adapter, or a wrapper of it that answers
    the record accessors differently, as a webhook's does).

    Raises :class:`PipelineConfigError` with the code a run records.
    """
    try:
        mapping = FieldMapping(task.field_mapping)
    except MappingError as exc:
        raise PipelineConfigError("invalid_mapping", f"invalid field mapping: {exc}") from None
    identity = tuple(
        name for name in (mapping.local_name(f) for f in adapter.identity_fields) if name
    )
    try:
        strategy = strategy_for(task.dedup_strategy, task.dedup_config, identity_fields=identity)
    except DedupConfigError as exc:
        raise PipelineConfigError("invalid_dedup_config", str(exc)) from None
    try:
        return PagePipeline(
            task=task,
            adapter=adapter,
            mapping=mapping,
            strategy=strategy,
            store=store,
            generation=generation,
            run=run,
            source=source,
        )
    except conflict_rules.ConflictConfigError as exc:
        raise PipelineConfigError("invalid_conflict_config", str(exc)) from None


class PagePipeline:
    def __init__(
        self,
        *,
        task: SyncTask,
        adapter,
        mapping: FieldMapping,
        strategy: Strategy,
        store: RecordStore,
        generation: int | None,
        run=None,
        source: tuple[str, str] | None = None,
    ):
        self.task = task
        self.adapter = adapter
        self.mapping = mapping
        self.strategy = strategy
        self.store = store
        self.generation = generation  # full refresh: stamp every record seen
        self.run = run
        # What the record history names as the cause of this pipeline's writes.
        self.history_source = source or (("run", str(run.pk)) if run else ("service", ""))
        self.scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
        self._only_new = False  # the last page applied held only new records
        self._record_id = record_ids(task.tenant_id, task.integration_id, task.entity_type)
        conflict_rules.validate_config(task.conflict_strategy, task.conflict_config)

    # -- mapping -------------------------------------------------------------------------

    def map(self, raw_records: list[dict], result: PageResult) -> list[Incoming]:
        incoming = []
        for position, raw in enumerate(raw_records):
            external_id = self.adapter.external_id(raw)
            if external_id is None:
                self._error(result, f"record #{position} has no id")
                continue
            try:
                data = self.mapping.apply(raw)
            except RecordMappingError as exc:
                self._error(result, f"record {external_id}: {exc}")
                continue
            data_json, data_hash = hashed(data)
            updated_raw = self.adapter.updated_at(raw)
            updated = parse_timestamp(updated_raw)
            if updated and (result.max_updated_at is None or updated > result.max_updated_at):
                result.max_updated_at, result.max_updated_raw = updated, updated_raw
            incoming.append(
                Incoming(
                    remote_version=self._remote_version(raw),
                    by_self=self._by_self(raw),
                    position=position,
                    external_id=external_id,
                    record_id=self._record_id(external_id),
                    data=data,
                    content_hash=data_hash,
                    data_json=data_json,
                    remote_updated_at=updated,
                    deleted=self.adapter.is_deleted(raw),
                    match_keys=self.strategy.keys(data),
                )
            )
        return incoming

    def _remote_version(self, raw: dict) -> str:
        # Optional in the adapter contract (the push half): older adapters omit it.
        accessor = getattr(self.adapter, "remote_version", None)
        return (accessor(raw) or "") if accessor else ""

    def _by_self(self, raw: dict) -> bool:
        accessor = getattr(self.adapter, "modified_by_self", None)
        return bool(accessor(raw)) if accessor else False

    def _error(self, result: PageResult, message: str) -> None:
        result.counts["errors"] += 1
        if len(result.errors) < MAX_ERROR_SAMPLES:
            result.errors.append(message)

    # -- the page ------------------------------------------------------------------------

    def map_page(self, raw_records: list[dict]) -> MappedPage:
        """The page's mapping (:meth:`map`), apart from applying it: touches no database and
        no state a page's application changes, so it may run in another thread."""
        result = PageResult()
        result.counts["fetched"] = len(raw_records)
        return MappedPage(self.map(raw_records, result), result)

    def apply(self, raw_records: list[dict], mapped: MappedPage | None = None) -> PageResult:
        """Run the whole pipeline for one page. Call inside the page transaction.

        While a run's pages hold only new records (a first load), a page is written as
        creates without looking its records up first: the store refuses a create whose record
        exists after all (a unique violation on its id or external id, raised as
        ``StaleRecordError`` with the write rolled back to its savepoint), and then the page
        is decided again against the store, as every page of an incremental run is. The two
        lookups cost a first load's page as much as its history (docs/benchmarks.md). Only
        where that refusal says everything the lookups would: a store inside the transaction,
        a strategy that matches by id alone (keys need the key index), and a page with no
        tombstones (deleting a stored record writes nothing new).

        ``mapped``: the page already mapped by :meth:`map_page` (the read-ahead's).
        """
        mapped = mapped or self.map_page(raw_records)
        incoming, result = mapped.incoming, _copy_result(mapped.result)
        if self._only_new and self._may_assume_new(incoming):
            try:
                return self._apply(incoming, _copy_result(result), assume_new=True)
            except StaleRecordError:
                self._only_new = False  # one of them exists: decide the page against the store
        return self._apply(incoming, result, assume_new=False)

    def _may_assume_new(self, incoming: list[Incoming]) -> bool:
        return (
            self.store.joins_transaction
            and not self.strategy.uses_keys
            and not any(item.deleted for item in incoming)
        )

    def _apply(self, incoming: list[Incoming], result: PageResult, *, assume_new: bool):
        self._pushes: list = []
        decisions, rules = deduplicate(
            incoming, store=self.store, scope=self.scope, assume_new=assume_new
        )
        result.rules.update(rules)
        existing_ids = [d.existing.id for d in decisions if d.existing]
        open_conflicts = {
            c.record_id: c
            for c in Conflict.objects.filter(record_id__in=existing_ids, status="open")
        }
        now = timezone.now()
        creates: list[StoredRecord] = []
        updates: list[StoredRecord] = []
        seen: list = []
        new_conflicts: list[Conflict] = []
        for decision in decisions:
            result.counts["duplicates"] += decision.duplicates
            outcome, record = self._decide(decision, now, open_conflicts, new_conflicts)
            result.counts[outcome] += 1
            if record is None:
                if decision.existing is not None:
                    seen.append(decision.existing.id)
            elif decision.existing is None:
                creates.append(record)
            else:
                updates.append(record)
        # A store outside the transaction (Cosmos DB): first the history a failed page still
        # owes, then each write carries its own (syncing/records/history_repair.py).
        history_repair.settle_owed(self, decisions)
        history_repair.note_intents(self, decisions, creates, updates)
        self.store.write(self.scope, creates, updates)
        history.page_written(self, decisions, creates, updates)
        if self._pushes:
            self._queue_pushes()
        if new_conflicts:
            Conflict.objects.bulk_create(new_conflicts)
            conflicts_waiting(self.task.tenant_id, self.task.integration_id)
        for conflict in open_conflicts.values():
            if conflict.pk and getattr(conflict, "_touched", False):
                conflict.save(update_fields=["remote_data", "remote_updated_at", "fields", "run"])
        if self.generation is not None and seen:
            self.store.mark_seen(self.scope, seen, self.generation)
        self._only_new = not any(d.existing for d in decisions)
        return result

    def _queue_pushes(self) -> None:
        """Outbound changes for conflicts resolved in favour of local data, in this page's
        transaction (they commit with the records), merged into a pending push if any."""
        for record, fields, winner in self._pushes:
            outbox.queue_change(
                record,
                OutboundChange.Operation.UPDATE,
                fields,
                origin=OutboundChange.Origin.CONFLICT,
                actor=f"sync:{self.task.conflict_strategy}:{winner}",
            )
        outbox.wake_after_commit()

    def _stamp(self, record: StoredRecord) -> StoredRecord:
        if self.generation is not None:
            record.seen_generation = self.generation
        return record

    def _decide(
        self, decision: Decision, now, open_conflicts, new_conflicts
    ) -> tuple[str, StoredRecord | None]:
        """(outcome, record to write or None)."""
        inc, ex = decision.incoming, decision.existing
        if ex is None:
            if inc.deleted:
                return "unchanged", None  # a tombstone for something we never had
            return "created", self._stamp(
                StoredRecord(
                    id=decision.target_id,
                    tenant_id=self.scope.tenant_id,
                    integration_id=self.scope.integration_id,
                    entity_type=self.scope.entity_type,
                    external_id=decision.external_id,
                    data=inc.data,
                    data_json=inc.data_json,
                    content_hash=inc.content_hash,
                    base_data=inc.data,
                    base_hash=inc.content_hash,
                    remote_updated_at=inc.remote_updated_at,
                    remote_version=inc.remote_version,
                    match_keys=inc.match_keys,
                    synced_at=now,
                    created_at=now,
                )
            )
        open_conflict = open_conflicts.get(ex.id)
        if open_conflict is not None:
            # Waiting for an operator: keep the record as it is, show them the newest remote.
            if open_conflict.remote_data != inc.data:
                open_conflict.remote_data = inc.data
                open_conflict.remote_updated_at = inc.remote_updated_at
                open_conflict.fields = conflicting_fields(ex.base_data, ex.data, inc.data)
                open_conflict.run = self.run
                open_conflict._touched = True
            return "conflicts", None
        if inc.deleted:
            if ex.deleted_at is not None:
                return "unchanged", None
            return "deleted", self._stamp(
                ex.copy(deleted_at=now, version=ex.version + 1, synced_at=now)
            )
        if (
            ex.remote_updated_at
            and inc.remote_updated_at
            and inc.remote_updated_at < ex.remote_updated_at
        ):
            return "unchanged", None  # an older version than the one we hold (out of order)
        if (ex.last_pushed_hash and inc.content_hash == ex.last_pushed_hash) or inc.by_self:
            # Our own write coming back (the exact content the push left on the provider, or
            # a version the provider says our integration user made): not a remote change,
            # never a conflict. The base moves to it; the local data stays (a local edit made
            # since is still on its way out). Counted once: the marker is cleared.
            adopt = inc.by_self and not ex.locally_modified and ex.deleted_at is None
            return "echoes", self._stamp(
                ex.copy(
                    base_data=inc.data,
                    base_hash=inc.content_hash,
                    remote_updated_at=inc.remote_updated_at,
                    remote_version=inc.remote_version or ex.remote_version,
                    last_pushed_hash="",
                    synced_at=now,
                    **({"data": inc.data, "content_hash": inc.content_hash} if adopt else {}),
                )
            )
        if inc.content_hash == ex.base_hash:
            if ex.deleted_at is not None:  # came back after a full refresh removed it
                return "updated", self._stamp(
                    ex.copy(deleted_at=None, version=ex.version + 1, synced_at=now)
                )
            return "unchanged", None
        remote_changes = dict(
            base_data=inc.data,
            base_hash=inc.content_hash,
            remote_updated_at=inc.remote_updated_at,
            remote_version=inc.remote_version,
            match_keys=inc.match_keys,
            deleted_at=None,
            synced_at=now,
        )
        if inc.content_hash == ex.content_hash:
            # Both sides arrived at the same data (or the local edit was undone remotely).
            return "unchanged", self._stamp(ex.copy(**remote_changes))
        if not ex.locally_modified:
            return "updated", self._stamp(
                ex.copy(
                    data=inc.data,
                    data_json=inc.data_json,
                    content_hash=inc.content_hash,
                    version=ex.version + 1,
                    **remote_changes,
                )
            )
        resolution = conflict_rules.resolve(
            self.task.conflict_strategy,
            base=ex.base_data,
            local=ex.data,
            remote=inc.data,
            local_updated_at=ex.local_updated_at,
            remote_updated_at=inc.remote_updated_at,
            config=self.task.conflict_config,
        )
        if resolution.data is None:
            new_conflicts.append(
                Conflict(
                    tenant_id=self.scope.tenant_id,
                    task=self.task,
                    run=self.run,
                    record_id=ex.id,
                    entity_type=ex.entity_type,
                    external_id=ex.external_id,
                    fields=resolution.fields,
                    base_data=ex.base_data,
                    local_data=ex.data,
                    remote_data=inc.data,
                    remote_updated_at=inc.remote_updated_at,
                )
            )
            return "conflicts", None
        data = resolution.data
        resolved = self._stamp(
            ex.copy(
                data=data,
                content_hash=content_hash(data),
                version=ex.version + 1,
                **remote_changes,
            )
        )
        differs = changed_fields(data, inc.data)
        if differs:
            # Local (or merged) data won: the provider must get it too (two-way sync).
            self._pushes.append((resolved, differs, resolution.winner))
        # No field changed on both sides: a clean merge, not a conflict anyone must look at.
        return ("conflicts" if resolution.fields else "updated"), resolved
