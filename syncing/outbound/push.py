"""The outbound push: dispatch claims due outbox changes in batches, a worker pushes a batch.

**Dispatch** (:func:`dispatch`; woken after a local change commits, after every batch, and by
the minute tick) claims *due heads* — pending changes whose ``next_attempt_at`` has come, whose
integration is operational and that are the oldest open change of their record — in batches
of ``CASTIEL_OUTBOUND_BATCH_SIZE``: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
RETURNING id`` on PostgreSQL, so concurrent dispatchers split the work; a conditional
``UPDATE … WHERE status = 'pending' AND lease_owner = ''`` on SQLite, whose writers serialise.
Each batch gets a lease token and one message on the ``outbound`` cluster. At most
``CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES`` wait in the queue; the rest stays in the outbox.

**The worker** (:func:`push_batch`) takes the batch only if its rows still carry the token (a
duplicate or late message does nothing), then for each change: re-reads the record, checks the
remote version when the task's policy needs it (``local_wins`` by default: conditional write
where the adapter supports it; ``remote_wins``/``manual``: compare the remote with the last
synced base first), writes through the adapter with the change's idempotency key (or finds an
earlier attempt's create by its marker), and records the result — the change's outcome and the
record's remote id, version and pushed hash (``RecordStore.mark_pushed``: the next pull sees
its echo) — in one transaction, fenced by the lease.

**Failures** are classified once (:func:`castiel.http.errors.next_step`): the rate limiter's
refusal (a delete while throttled) or deferral puts the change back, untouched, until
``retry_after`` — never lost, never counted as an attempt; retryable failures back off with full
jitter, never below ``Retry-After`` (short waits inside the batch, longer ones by releasing the
change), up to the task's attempt limit; anything else becomes a dead letter at once.

A killed worker's changes keep their lease until it expires; the reaper
(``syncing/outbound_reaper.py``) returns them to pending and they are pushed again with the same
idempotency key, so the provider applies each change once — unless the lost attempt was the
last one allowed: then the change is a dead letter, not a poison change retried forever.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from castiel.http.errors import DEFERRED, REFUSED, RETRY, next_step
from castiel.http.retry import full_jitter_delay
from castiel.observability.context import bound, get_execution_id
from castiel.observability.logging import get_logger
from castiel.queue import enqueue, enqueue_many
from castiel.tenancy.models import active_tenant_ids
from integrations.adapters.base import PushResult, RemoteChanged, adapter_for
from integrations.adapters.mapping import FieldMapping, RecordMappingError
from integrations.adapters.normalize import parse_timestamp
from integrations.models import Integration
from syncing import metrics
from syncing.inbound.conflicts import changed_fields
from syncing.inbound.leases import new_token
from syncing.models import Conflict, OutboundChange, PushConflictStrategy, SyncTask
from syncing.outbound.deadletters import dead_letter_create, error_code, error_message
from syncing.outbound.fair_claim import claim_fairly
from syncing.outbound.fencing import fenced_update, fenced_update_many
from syncing.outbound.local_changes import is_pending_external_id
from syncing.outbound.reaper import reap_expired
from syncing.records import history
from syncing.records.hashing import content_hash
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope, StaleRecordError

log = get_logger(__name__)

WORKER = "syncing.tasks.push_outbound_batch"
WAKE_KEY = "outbound:wake"
MAX_ATTEMPT_LOG = OutboundChange.MAX_ATTEMPT_LOG
Status = OutboundChange.Status
Operation = OutboundChange.Operation


class LeaseLost(Exception):
    """This worker no longer holds the change (its lease expired and it was handed on)."""


class RemoteMissing(Exception):
    """The record to update does not exist at the provider (like an HTTP 404): permanent."""

    retryable = False
    code = "remote_missing"
    status = 404


# -- dispatch --------------------------------------------------------------------------------


def request_dispatch() -> None:
    """Wake the dispatcher soon: at most one queued wake-up per debounce window.

    The dispatcher clears the flag *before* it looks for work, so a change committed after
    the flag was cleared sends a new wake-up and a change committed before is seen by that
    scan: no change waits for the minute tick unless the cache or broker failed. The flag is
    set only once the change has committed: a rolled-back change must not hold back the
    wake-ups of others.
    """
    transaction.on_commit(_wake_dispatcher)


def _wake_dispatcher() -> None:
    try:
        first = cache.add(
            WAKE_KEY, 1, timeout=max(1, int(settings.CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS))
        )
    except Exception:  # the cache is an optimisation here, never a reason to lose a wake-up
        first = None
    if first is not False:
        enqueue("syncing.tasks.dispatch_outbound", kind="outbound")


def due(now=None):
    """Changes the dispatcher may claim now (the oldest open change of their record; its
    integration operational, its tenant active — a deactivated tenant's changes wait)."""
    now = now or timezone.now()
    earlier_open = OutboundChange.objects.filter(
        record_id=OuterRef("record_id"), seq__lt=OuterRef("seq"), status__in=OutboundChange.OPEN
    )
    return OutboundChange.objects.filter(
        status=Status.PENDING,
        lease_owner="",
        next_attempt_at__lte=now,
        integration__enabled=True,
        integration__status=Integration.Status.ACTIVE,
        tenant__is_active=True,
    ).filter(~Exists(earlier_open))


def claim(limit: int, *, now=None, suspects: bool = False) -> tuple[str, list]:
    """Lease up to ``limit`` due changes under one new token; return (token, ids).

    Fair across tenants (``syncing/fair_claim.py``): every tenant's oldest due change before
    anyone's second; what the per-tenant share leaves of the batch is filled oldest first.
    ``suspects``: claim among the changes whose worker stopped during an earlier attempt
    (``lost_attempts``; see syncing/outbound_reaper.py) instead of the others — they are
    pushed one per batch.
    """
    now = now or timezone.now()
    token = new_token()
    expires = now + timedelta(seconds=settings.CASTIEL_OUTBOUND_QUEUE_LEASE_SECONDS)
    with transaction.atomic():
        if suspects:
            ids = _claim_oldest(token, expires, limit, due(now).filter(lost_attempts__gt=0))
        else:
            heads = due(now).filter(lost_attempts=0)
            ids = claim_fairly(token, expires, limit, now, heads)
            if len(ids) < limit:
                ids += _claim_oldest(token, expires, limit - len(ids), heads)
    metrics.CHANGES_CLAIMED.inc(len(ids))
    return token, ids


def _claim_oldest(token: str, expires, limit: int, candidates) -> list:
    """Lease the ``limit`` oldest of ``candidates`` under ``token``; the ids it leased."""
    ordered = candidates.order_by("next_attempt_at", "seq")
    if connection.vendor == "postgresql":
        inner = ordered.values("id")[:limit].select_for_update(skip_locked=True, of=("self",))
        sql, params = inner.query.sql_with_params()
        table = OutboundChange._meta.db_table
        with connection.cursor() as cursor:
            # The table name and the inner SELECT are Django's own; values are params.
            statement = (
                f"UPDATE {table} SET lease_owner = %s, status = %s, lease_expires_at = %s "  # noqa: S608
                f"WHERE id IN ({sql}) RETURNING id"
            )
            cursor.execute(statement, [token, Status.QUEUED, expires, *params])
            return [row[0] for row in cursor.fetchall()]
    # SQLite: no row locks; the conditional UPDATE is the claim (writers serialise).
    candidates = list(ordered.values_list("id", flat=True)[:limit])
    OutboundChange.objects.filter(id__in=candidates, status=Status.PENDING, lease_owner="").update(
        lease_owner=token, status=Status.QUEUED, lease_expires_at=expires
    )
    return list(
        OutboundChange.objects.filter(id__in=candidates, lease_owner=token).values_list(
            "id", flat=True
        )
    )


def queued_batches() -> int:
    return (
        OutboundChange.objects.filter(status=Status.QUEUED).values("lease_owner").distinct().count()
    )


def dispatch(*, max_batches: int | None = None) -> int:
    """Claim due changes in batches and queue one push message per batch; return how many."""
    try:
        cache.delete(WAKE_KEY)
    except Exception:
        log.warning("outbound.wake_flag_unavailable", exc_info=True)
    size = settings.CASTIEL_OUTBOUND_BATCH_SIZE
    room = max_batches
    if room is None:
        room = settings.CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES - queued_batches()
    tokens, total = [], 0
    for _ in range(max(0, room)):
        token, ids = claim(size)
        if not ids:
            break
        tokens.append((token,))
        total += len(ids)
        if len(ids) < size:
            break
    enqueue_many(WORKER, tokens, kind="outbound")
    if total:
        log.info("outbound.dispatched", changes=total, batches=len(tokens))
    return total


def dispatch_suspects(*, limit: int = 100) -> int:
    """Queue each due suspect change in a batch of its own; return how many.

    Run by the minute tick right after the reaper: a change whose worker stopped may be what
    stopped it, and alone it can only take itself down (its attempts run out and it becomes
    a dead letter) instead of every change batched with it.
    """
    tokens = []
    for _ in range(limit):
        token, ids = claim(1, suspects=True)
        if not ids:
            break
        tokens.append((token,))
    enqueue_many(WORKER, tokens, kind="outbound")
    if tokens:
        log.info("outbound.dispatched_suspects", changes=len(tokens))
    return len(tokens)


# -- the worker ------------------------------------------------------------------------------


@dataclass
class PushContext:
    """What every change of one (integration, entity type) in a batch shares."""

    integration: Integration
    task: object | None
    adapter: object
    mapping: FieldMapping
    strategy: str
    max_attempts: int


ACK_GROUP_SECONDS = 0.2  # a push result waits at most this long for its group's commit


@dataclass
class _Ack:
    change: OutboundChange
    fields: dict
    push: dict
    record: object = None  # the record as the push read it (for its history)
    at: float = field(default_factory=time.monotonic)


def push_batch(token: str) -> dict:
    batch = PushBatch(token)
    counts = batch.run()
    if batch.taken:
        dispatch()  # keep the outbox flowing: the next due changes (successors included)
    return counts


class PushBatch:
    def __init__(self, token: str):
        self.token = token
        self.store = get_store()
        self.contexts: dict[tuple, PushContext | Exception] = {}
        self.started = time.monotonic()
        self.renewed = time.monotonic()
        self.execution_id = get_execution_id() or ""
        self.taken = 0
        self.records: dict = {}
        self.acks: list[_Ack] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def take(self) -> list[OutboundChange]:
        """queued → running (fenced by the token), counting an attempt for each. A change whose
        tenant was deactivated after the claim is not taken: it stays queued until the reaper
        returns it, and no claim takes it while the tenant is inactive."""
        now = timezone.now()
        self.taken = OutboundChange.objects.filter(
            lease_owner=self.token,
            status=Status.QUEUED,
            lease_expires_at__gt=now,
            tenant_id__in=active_tenant_ids(),
        ).update(
            status=Status.RUNNING,
            lease_expires_at=now + timedelta(seconds=settings.CASTIEL_OUTBOUND_LEASE_SECONDS),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            first_attempt_at=Coalesce(F("first_attempt_at"), Value(now)),
            execution_id=self.execution_id,
        )
        if not self.taken:
            log.info("outbound.stale_message", token=self.token)
            return []
        return list(
            OutboundChange.objects.filter(lease_owner=self.token, status=Status.RUNNING)
            .select_related("integration")
            .order_by("seq")
        )

    def run(self) -> dict:
        changes = self.take()
        self.records = self._prefetch(changes)
        try:
            return self._run(changes)
        finally:
            self._flush_acks()

    def _prefetch(self, changes) -> dict:
        """The batch's records in one read per scope (each change's first attempt uses it;
        a retry re-reads). A local edit made after the change was claimed — before or after
        this read — has its own outbound change queued behind, and the push result never
        overwrites it (``_records_with_later_changes``, ``mark_pushed``)."""
        scopes: dict[Scope, list] = {}
        for change in changes:
            scope = Scope(change.tenant_id, change.integration_id, change.entity_type)
            scopes.setdefault(scope, []).append(change.record_id)
        records = {}
        for scope, ids in scopes.items():
            records.update(self.store.get_many(scope, ids))
        return records

    def _run(self, changes) -> dict:
        counts: dict[str, int] = {}
        # (due on the monotonic clock, position, change): retries wait here, inside the batch.
        queue = [(0.0, i, change) for i, change in enumerate(changes)]
        budget = settings.CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS
        while queue:
            due_at, position, change = heapq.heappop(queue)
            wait = due_at - time.monotonic()
            if time.monotonic() + max(0.0, wait) - self.started > budget:
                for left_due, _, left in [(due_at, position, change), *queue]:
                    self._release(
                        left,
                        delay=max(0.0, left_due - time.monotonic()),
                        reason="batch time budget reached; continues in a later batch",
                        # A first attempt was counted at take() but never made; a waiting
                        # retry's attempt is only counted when it is made.
                        attempted=bool(left_due),
                    )
                break
            if wait > 0:
                self._flush_acks()
                self._sleep(wait)
            if due_at:  # an inline retry: a new attempt
                if not self._count_attempt(change):
                    continue
            outcome, retry_in = self.push(change)
            counts[outcome] = counts.get(outcome, 0) + 1
            if retry_in is not None:
                heapq.heappush(queue, (time.monotonic() + retry_in, position, change))
        return counts

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 5.0))
            self._renew(force=True)

    def _renew(self, force: bool = False) -> None:
        """Extend the lease of every change this batch still holds (every lease/4 at most)."""
        lease = settings.CASTIEL_OUTBOUND_LEASE_SECONDS
        if not force and time.monotonic() - self.renewed < lease / 4:
            return
        now = timezone.now()
        OutboundChange.objects.filter(
            lease_owner=self.token, status=Status.RUNNING, lease_expires_at__gt=now
        ).update(lease_expires_at=now + timedelta(seconds=lease))
        self.renewed = time.monotonic()

    def _count_attempt(self, change: OutboundChange) -> bool:
        now = timezone.now()
        counted = OutboundChange.objects.filter(
            pk=change.pk, lease_owner=self.token, status=Status.RUNNING
        ).update(attempts=F("attempts") + 1, last_attempt_at=now)
        if counted:
            change.attempts += 1
            change.last_attempt_at = now
        return bool(counted)

    # -- one change --------------------------------------------------------------------------

    def push(self, change: OutboundChange) -> tuple[str, float | None]:
        """Push one change; (outcome, seconds until an inline retry or None)."""
        self._renew()
        started = time.perf_counter()
        provider = change.integration.provider
        with bound(correlation_id=change.correlation_id or None):
            try:
                context = self.context(change)
                outcome = self.attempt(change, context)
            except LeaseLost:
                log.warning("outbound.lease_lost", change_id=str(change.pk))
                return "lease_lost", None
            except Exception as exc:
                if not _is_expected(exc):
                    log.exception("outbound.push_crashed", change_id=str(change.pk))
                return self.failed(change, exc, time.perf_counter() - started)
        duration = time.perf_counter() - started
        metrics.PUSH_DURATION.labels(provider, change.operation).observe(duration)
        metrics.PUSHES.labels(provider, change.operation, outcome).inc()
        return outcome, None

    def context(self, change: OutboundChange) -> PushContext:
        key = (change.integration_id, change.entity_type)
        if key not in self.contexts:
            try:
                self.contexts[key] = self._build_context(change)
            except Exception as exc:  # a broken configuration fails every change alike
                self.contexts[key] = exc
        found = self.contexts[key]
        if isinstance(found, Exception):
            raise found
        return found

    def _build_context(self, change: OutboundChange) -> PushContext:
        integration = change.integration
        task = SyncTask.objects.filter(
            integration_id=integration.pk, entity_type=change.entity_type
        ).first()
        adapter = adapter_for(integration, change.entity_type)
        adapter.validate()
        return PushContext(
            integration=integration,
            task=task,
            adapter=adapter,
            mapping=FieldMapping(task.field_mapping if task else {}),
            strategy=task.push_conflict_strategy if task else PushConflictStrategy.LOCAL_WINS,
            max_attempts=(task.push_max_attempts if task else None)
            or settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS,
        )

    def attempt(self, change: OutboundChange, ctx: PushContext) -> str:
        if not ctx.integration.is_operational:
            self._release(
                change,
                delay=0,
                reason=f"integration {ctx.integration.name!r} is {ctx.integration.status}; "
                "the change waits until it is active again",
                attempted=False,
            )
            return "paused"
        record = self.records.pop(change.record_id, None)
        if record is None or change.attempts > 1:
            record = self.store.get(change.tenant_id, change.record_id)
        if record is None:
            return self._skip(change, "the record no longer exists")
        if change.operation == Operation.CREATE:
            return self._create(change, ctx, record)
        if change.operation == Operation.UPDATE:
            return self._update(change, ctx, record)
        return self._delete(change, ctx, record)

    def _create(self, change, ctx: PushContext, record) -> str:
        if not is_pending_external_id(record.external_id):
            # An earlier attempt's result was recorded on the record already (the Cosmos
            # store commits it separately from the change row).
            return self._finish(change, Status.SUCCEEDED, remote_id=record.external_id)
        adapter = ctx.adapter
        payload = ctx.mapping.to_remote(record.data)
        found = None
        if change.attempts > 1 and adapter.can_find_created:
            # An earlier attempt may have created it and lost the answer: look it up by the
            # marker it wrote rather than create a second one.
            found = adapter.find_created(change.idempotency_key, payload=payload)
        if found is not None:
            result = PushResult(
                external_id=adapter.external_id(found),
                record=found,
                version=adapter.remote_version(found),
                replayed=True,
            )
        else:
            result = adapter.create(payload, idempotency_key=change.idempotency_key)
        return self._ack(change, ctx, record, result)

    def _update(self, change, ctx: PushContext, record) -> str:
        if record.deleted_at is not None:
            return self._skip(change, "the record was deleted locally; its delete follows")
        external_id = record.external_id
        if is_pending_external_id(external_id):
            raise RemoteMissing("the record was never created at the provider")
        payload = ctx.mapping.to_remote(record.data, change.fields or None)
        strategy = PushConflictStrategy.LOCAL_WINS if change.force else ctx.strategy
        adapter = ctx.adapter
        conditional = (
            adapter.supports_conditional_writes and bool(record.remote_version) and not change.force
        )
        if strategy != PushConflictStrategy.LOCAL_WINS and not conditional:
            current = adapter.get_one(external_id)
            if current is None:
                raise RemoteMissing(f"{change.entity_type} {external_id} does not exist remotely")
            if self._remote_changed(ctx, record, current) and self._conflicting(
                ctx, record, current
            ):
                return self._on_remote_change(change, ctx, record, current)
        notes = []
        try:
            result = adapter.update(
                external_id,
                payload,
                idempotency_key=change.idempotency_key,
                if_version=record.remote_version if conditional else None,
            )
        except RemoteChanged:
            if strategy == PushConflictStrategy.LOCAL_WINS:
                notes.append("the remote changed since the last sync; local wins: pushed anyway")
            else:
                current = adapter.get_one(external_id)
                if current is None:
                    raise RemoteMissing(f"{external_id} was deleted remotely") from None
                if self._conflicting(ctx, record, current):
                    return self._on_remote_change(change, ctx, record, current)
                notes.append(
                    "the remote changed since the last sync, but none of the fields pushed: "
                    "pushed (the provider's other changes stay)"
                )
            # A new key: the provider keeps its 412 under the first one (and would replay
            # it); the refused request applied nothing, so this cannot apply anything twice.
            result = adapter.update(
                external_id, payload, idempotency_key=f"{change.idempotency_key}.unconditional"
            )
        return self._ack(change, ctx, record, result, notes=notes)

    def _delete(self, change, ctx: PushContext, record) -> str:
        external_id = record.external_id
        if is_pending_external_id(external_id):
            return self._skip(change, "the record was never created at the provider")
        strategy = PushConflictStrategy.LOCAL_WINS if change.force else ctx.strategy
        adapter = ctx.adapter
        if strategy != PushConflictStrategy.LOCAL_WINS:
            current = adapter.get_one(external_id)
            if current is None:
                return self._finish(change, Status.SUCCEEDED, status_reason="already gone")
            if self._remote_changed(ctx, record, current):
                return self._on_remote_change(change, ctx, record, current)
        try:
            result = adapter.delete(external_id, idempotency_key=change.idempotency_key)
        except Exception as exc:
            if getattr(exc, "status", None) in (404, 410):
                return self._finish(
                    change, Status.SUCCEEDED, remote_id=external_id, status_reason="already gone"
                )
            raise
        return self._finish(
            change, Status.SUCCEEDED, remote_id=external_id, replayed=result.replayed
        )

    # -- conflicts -----------------------------------------------------------------------------

    def _mapped(self, ctx: PushContext, raw: dict | None) -> dict | None:
        if raw is None:
            return None
        try:
            return ctx.mapping.apply(raw)
        except RecordMappingError:
            return None

    def _remote_changed(self, ctx: PushContext, record, current: PushResult) -> bool:
        """Has the provider's copy moved since the last sync (its base)?"""
        if record.remote_version and current.version:
            return current.version != record.remote_version
        remote = self._mapped(ctx, current.record)
        return remote is not None and content_hash(remote) != record.base_hash

    def _conflicting(self, ctx: PushContext, record, current: PushResult) -> list[str]:
        """Fields both the local edit and the provider changed, differently, since the base.

        None: the remote's changes and ours touch different fields, and an update sends only
        the fields that changed locally, so it goes out whatever the push policy (the same
        clean merge the pull makes, syncing/conflicts.py)."""
        remote = self._mapped(ctx, current.record) or {}
        return changed_fields(record.base_data, record.data, remote)

    def _on_remote_change(self, change, ctx: PushContext, record, current: PushResult) -> str:
        remote = self._mapped(ctx, current.record) or {}
        if ctx.strategy == PushConflictStrategy.REMOTE_WINS:
            conflicting = self._conflicting(ctx, record, current)
            rest = [f for f in change.fields or [] if f not in conflicting]
            if change.operation == Operation.UPDATE and rest:
                # The remote wins the fields both sides changed; the local edit's other
                # fields still go out (only they are sent), and the provider's answer —
                # its values and ours — becomes the record.
                result = ctx.adapter.update(
                    current.external_id,
                    ctx.mapping.to_remote(record.data, rest),
                    idempotency_key=f"{change.idempotency_key}.remote-wins",
                )
                note = (
                    f"the remote changed {', '.join(sorted(conflicting))} too: remote wins "
                    f"there; pushed {', '.join(rest)}"
                )
                return self._ack(change, ctx, record, result, notes=[note])
            # The remote's copy becomes the record, except fields a later local change
            # edited: those edits are still to be pushed (and judged) by their own change.
            later = _later_fields(record.id, change.pk)
            data = {k: v for k, v in remote.items() if k not in later}
            data.update({k: v for k, v in record.data.items() if k in later})
            with transaction.atomic(), self.store.atomic():
                self._finish(
                    change,
                    Status.SKIPPED,
                    status_reason="the remote changed since the last sync; remote wins",
                )
                self.store.save_record(
                    record.copy(
                        data=data,
                        content_hash=content_hash(data),
                        base_data=remote,
                        base_hash=content_hash(remote),
                        remote_version=current.version or "",
                        deleted_at=None,
                        version=record.version + 1,
                    )
                )
            return "skipped"
        # manual: hold the change (and the record's later ones) until an operator decides.
        with transaction.atomic():
            self._fenced(
                change,
                status=Status.CONFLICT,
                lease_owner="",
                lease_expires_at=None,
                # Nothing was applied (a refused conditional write or only a read): once
                # released it is a new request, under a new key (the provider may have stored
                # its 412 under the old one).
                key_generation=F("key_generation") + 1,
                status_reason="the remote changed since the last sync; held for review",
                attempt_log=self._log(change, "conflict"),
            )
            if not Conflict.objects.filter(record_id=record.id, status="open").exists():
                Conflict.objects.create(
                    tenant_id=change.tenant_id,
                    task=ctx.task,
                    record_id=record.id,
                    entity_type=record.entity_type,
                    external_id=record.external_id,
                    fields=changed_fields(record.base_data, record.data, remote),
                    base_data=record.base_data,
                    local_data=record.data,
                    remote_data=remote,
                    remote_updated_at=parse_timestamp(ctx.adapter.updated_at(current.record)),
                )
        return "conflict"

    # -- results -------------------------------------------------------------------------------

    def _ack(self, change, ctx: PushContext, record, result: PushResult, notes=()) -> str:
        """Record a successful write: the change's result and what the provider now holds."""
        raw, version = result.record, result.version
        if raw is None:
            # The provider answered without the record (e.g. 204): read it back once, so the
            # pushed hash (and with it the echo of the next pull) is known.
            current = ctx.adapter.get_one(result.external_id)
            if current is not None:
                raw, version = current.record, version or current.version
        remote = self._mapped(ctx, raw)
        pushed_hash = content_hash(remote) if remote is not None else ""
        updated_at = parse_timestamp(ctx.adapter.updated_at(raw)) if raw else None
        self.acks.append(
            _Ack(
                change=change,
                fields=self._finish_fields(
                    change,
                    Status.SUCCEEDED,
                    remote_id=result.external_id,
                    remote_version=version or "",
                    replayed=result.replayed,
                    status_reason="; ".join(notes),
                ),
                push=dict(
                    tenant_id=change.tenant_id,
                    record_id=record.id,
                    pushed_hash=pushed_hash,
                    remote=remote,
                    local_hash=record.content_hash,
                    external_id=result.external_id
                    if change.operation == Operation.CREATE
                    else None,
                    remote_version=version or "",
                    remote_updated_at=updated_at,
                ),
                record=record,
            )
        )
        # Results are committed in groups (one transaction, one commit for several pushes)
        # when sending a change again after a crash is harmless: the provider honours the
        # idempotency key, or the write is an update/delete of content that is already
        # there. A create that could land twice is committed at once.
        harmless = ctx.adapter.supports_idempotency_keys or change.operation != Operation.CREATE
        if (
            not harmless
            or len(self.acks) >= settings.CASTIEL_OUTBOUND_ACK_GROUP
            or time.monotonic() - self.acks[0].at > ACK_GROUP_SECONDS
        ):
            self._flush_acks()
        return "succeeded"

    def _flush_acks(self) -> None:
        """Commit the pending push results: each change's outcome and its record's new state
        (``mark_pushed``) together, fenced by the lease."""
        acks, self.acks = self.acks, []
        if not acks:
            return
        with transaction.atomic(), self.store.atomic():  # one commit (ORM store)
            held = fenced_update_many(self.token, [(ack.change.pk, ack.fields) for ack in acks])
            edited_since = _records_with_later_changes([ack.change for ack in acks])
            written_back = []
            for ack in acks:
                if ack.change.pk not in held:
                    log.warning("outbound.lease_lost", change_id=str(ack.change.pk))
                    continue  # its new holder pushes it again (same key) and records it
                push = {**ack.push, "keep_local": ack.change.record_id in edited_since}
                if self._record_push(push) and ack.push["pushed_hash"] != (ack.record.content_hash):
                    # The provider's copy differs from what was pushed: it is the data now.
                    fields = history.changed_fields(ack.record.data, ack.push["remote"])
                    written_back.append((ack.record, fields, ack.change.pk))
            history.written_back(written_back)

    def _record_push(self, push: dict) -> bool:
        """``mark_pushed``; True when the record's data became the provider's copy."""
        for _ in range(5):
            try:
                return self.store.mark_pushed(**push)
            except StaleRecordError:
                continue  # a local edit landed meanwhile (stores without a conditional UPDATE)
            except KeyError:
                return False  # the record vanished locally; the change itself is done
        raise StaleRecordError([push["record_id"]])

    def _skip(self, change, reason: str) -> str:
        self._finish(change, Status.SKIPPED, status_reason=reason)
        return "skipped"

    def _finish(self, change, status: str, **fields) -> str:
        self._fenced(change, **self._finish_fields(change, status, **fields))
        return status

    def _finish_fields(self, change, status: str, **fields) -> dict:
        now = timezone.now()
        started = change.last_attempt_at or now
        return dict(
            status=status,
            lease_owner="",
            lease_expires_at=None,
            finished_at=now,
            duration_ms=round((now - started).total_seconds() * 1000, 1),
            error_code="",
            attempt_log=self._log(change, status, **{k: v for k, v in fields.items() if v}),
            **fields,
        )

    def _fenced(self, change, **fields) -> None:
        if not fenced_update(change.pk, self.token, fields):
            raise LeaseLost(str(change.pk))

    def _log(self, change, outcome: str, **details) -> list:
        entry = {
            "attempt": change.attempts,
            "at": timezone.now().isoformat(),
            "outcome": outcome,
            "execution_id": self.execution_id,
            **{k: v for k, v in details.items() if k in ("code", "status", "message", "delay")},
            **({"retry_after": details["retry_after"]} if "retry_after" in details else {}),
        }
        if change.last_attempt_at:
            elapsed = (timezone.now() - change.last_attempt_at).total_seconds()
            entry["duration_ms"] = round(elapsed * 1000, 1)
        change.attempt_log = [*(change.attempt_log or []), entry][-MAX_ATTEMPT_LOG:]
        return change.attempt_log

    # -- failures ------------------------------------------------------------------------------

    def failed(self, change, exc: BaseException, duration: float) -> tuple[str, float | None]:
        # A local write raced ours on the record (stores without a conditional UPDATE):
        # trying again is all it takes.
        step = RETRY if isinstance(exc, StaleRecordError) else next_step(exc)
        provider = change.integration.provider
        code, message = error_code(exc), error_message(exc)
        retry_after = getattr(exc, "retry_after", None)
        metrics.PUSH_DURATION.labels(provider, change.operation).observe(duration)
        try:
            if step in (REFUSED, DEFERRED):
                # The limiter stopped it before anything was sent: not an attempt, not lost.
                delay = retry_after if retry_after is not None else 1.0
                metrics.PUSH_RETRIES.labels(provider, step).inc()
                self._release(
                    change,
                    delay=delay,
                    reason=str(exc),
                    attempted=False,
                    log=self._log(change, step, code=code, message=message[:300], delay=delay),
                )
                return step, None
            ctx = self.contexts.get((change.integration_id, change.entity_type))
            limit = ctx.max_attempts if isinstance(ctx, PushContext) else 1
            if step == RETRY and change.attempts < limit:
                delay = full_jitter_delay(
                    change.attempts,
                    base=settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS,
                    cap=settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS,
                    retry_after=retry_after,
                )
                metrics.PUSH_RETRIES.labels(provider, code).inc()
                entry = self._log(
                    change,
                    "retry",
                    code=code,
                    status=getattr(exc, "status", None),
                    message=message[:300],
                    delay=round(delay, 3),
                    retry_after=retry_after,
                )
                log.warning(
                    "outbound.retry", change_id=str(change.pk), code=code, delay=round(delay, 3)
                )
                left = settings.CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS - (
                    time.monotonic() - self.started
                )
                if delay <= min(settings.CASTIEL_OUTBOUND_MAX_INLINE_WAIT, left):
                    self._fenced(
                        change,
                        error_code=code,
                        error_summary=message,
                        status_reason=f"retrying in {delay:.1f}s",
                        attempt_log=entry,
                    )
                    return "retry", delay
                self._release(change, delay=delay, reason=message, attempted=True, log=entry)
                return "retry", None
            reason = f"gave up after {change.attempts} attempts" if step == RETRY else ""
            self._dead(change, exc, reason=reason)
            metrics.PUSHES.labels(provider, change.operation, "dead").inc()
            return "dead", None
        except LeaseLost:
            return "lease_lost", None

    def _release(self, change, *, delay: float, reason: str, attempted: bool, log=None) -> None:
        fields = {
            "status": Status.PENDING,
            "lease_owner": "",
            "lease_expires_at": None,
            "next_attempt_at": timezone.now() + timedelta(seconds=delay),
            "status_reason": reason[:2000],
        }
        if log is not None:
            fields["attempt_log"] = log
        if not attempted:
            fields["attempts"] = F("attempts") - 1
        if attempted and change.error_code:
            fields["error_code"] = change.error_code
        try:
            self._fenced(change, **fields)
        except LeaseLost:
            pass

    def _dead(self, change, exc: BaseException, *, reason: str) -> None:
        code, message = error_code(exc), error_message(exc)
        if reason:
            message = f"{reason}: {message}"
        ctx = self.contexts.get((change.integration_id, change.entity_type))
        adapter = ctx.adapter if isinstance(ctx, PushContext) else None
        entry = self._log(
            change, "dead", code=code, status=getattr(exc, "status", None), message=message[:300]
        )
        with transaction.atomic():
            self._fenced(
                change,
                status=Status.DEAD,
                lease_owner="",
                lease_expires_at=None,
                finished_at=timezone.now(),
                error_code=code,
                error_summary=message[:5000],
                status_reason="dead letter: " + message[:500],
                attempt_log=entry,
            )
            dead_letter_create(change=change, exc=exc, adapter=adapter, reason=reason)
        metrics.DEAD_LETTERS.labels(change.integration.provider).inc()
        log.warning("outbound.dead_letter", change_id=str(change.pk), code=code)


def _later_fields(record_id, change_pk) -> set[str]:
    """Fields edited by the record's open changes other than ``change_pk`` (later ones)."""
    later = OutboundChange.objects.filter(record_id=record_id, status__in=OutboundChange.OPEN)
    return {
        name
        for fields in later.exclude(pk=change_pk).values_list("fields", flat=True)
        for name in fields or []
    }


def _records_with_later_changes(changes) -> set:
    """The records among ``changes``' that have another open change — a local edit written
    after the pushed change was claimed, so not merged into it.

    The push read such a record with that edit in it but sent only its own change's fields:
    the provider's answer holds the edited fields' old values and must not become the
    record's data (the later change pushes them next). An edit committed after the push's
    read is caught by ``mark_pushed``'s hash comparison instead; between them, every edit
    the write-back could overwrite is seen (an edit's outbox row commits with it).
    """
    return set(
        OutboundChange.objects.filter(
            record_id__in={change.record_id for change in changes},
            status__in=OutboundChange.OPEN,
        )
        .exclude(pk__in=[change.pk for change in changes])
        .values_list("record_id", flat=True)
    )


def _is_expected(exc: BaseException) -> bool:
    """Failures that are part of talking to providers (not bugs worth a traceback)."""
    from castiel.http.errors import OutboundError
    from integrations.adapters.base import AdapterError

    return isinstance(exc, OutboundError | AdapterError | RemoteMissing | StaleRecordError)


# -- the minute tick's housekeeping -----------------------------------------------------------


def prune_finished(now=None) -> int:
    """Delete finished changes older than the retention period (their dead letters too)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CASTIEL_OUTBOUND_RETENTION_DAYS)
    deleted, _ = OutboundChange.objects.filter(
        status__in=OutboundChange.FINAL, finished_at__lt=cutoff
    ).delete()
    return deleted


def tick() -> dict[str, int]:
    """The minute tick: reap expired leases, prune old results, dispatch what is due
    (suspect changes alone)."""
    return {
        "reaped": reap_expired(),
        "pruned": prune_finished(),
        "suspects": dispatch_suspects(),
        "dispatched": dispatch(),
    }
