"""The push worker: one batch message — take the changes its token holds, push each, record.

:func:`push_batch` (the ``outbound`` cluster's entry point, ``syncing.tasks``) runs a
:class:`PushBatch`, then dispatches again to keep the outbox flowing. The batch takes its
changes only if their rows still carry the token (a duplicate or late message does nothing;
``fencing.py``), then for each change: re-reads the record, writes through the adapter after
the remote check its task's policy asks for (``writes.py``, ``remote_check.py``), and records
the result — the change's outcome and the record's remote id, version and pushed hash — in
groups, fenced by the lease (``acknowledge.py``). A failure is put back, retried (inline when
short, within the batch's time budget) or becomes a dead letter (``failures.py``).

A killed worker's changes keep their lease until it expires; the reaper (``reaper.py``)
returns them to pending and they are pushed again with the same idempotency key, so the
provider applies each change once — unless the lost attempt was the last one allowed: then
the change is a dead letter, not a poison change retried forever. Claiming and queueing
batches is ``dispatch.py``.
"""

from __future__ import annotations

import heapq
import time

from django.conf import settings

from castiel.db.leases import LeaseLost
from castiel.observability import tracing
from castiel.observability.context import bound, get_execution_id
from castiel.observability.logging import get_logger
from syncing import metrics
from syncing.models import OutboundChange
from syncing.outbound import batches, failures, writes
from syncing.outbound.acknowledge import Acks
from syncing.outbound.context import PushContext, build_context
from syncing.outbound.dispatch import dispatch
from syncing.outbound.fencing import BatchLease
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope

log = get_logger(__name__)

BUDGET_REACHED = "batch time budget reached; continues in a later batch"


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
        self.lease = BatchLease(token, get_execution_id() or "")
        self.acks = Acks(self.lease, self.store)
        self.contexts: dict[tuple, PushContext | Exception] = {}
        self.started = time.monotonic()
        self.records: dict = {}

    @property
    def taken(self) -> int:
        return self.lease.taken

    def take(self) -> list[OutboundChange]:
        return self.lease.take()

    def run(self) -> dict:
        changes = self.take()
        tracing.set_span_attributes(batch=self.token, count=len(changes))
        self.records = self._prefetch(changes)
        try:
            return self._run(changes)
        finally:
            self.acks.flush()

    def _prefetch(self, changes) -> dict:
        """The batch's records in one read per scope (each change's first attempt uses it;
        a retry re-reads). A local edit made after the change was claimed — before or after
        this read — has its own outbound change queued behind, and the push result never
        overwrites it (``acknowledge.records_with_later_changes``, ``mark_pushed``)."""
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
        # Adapters with batch endpoints: one request per group of changes (``batches.py``).
        groups, changes = batches.split(self, changes)
        for number, chunk in enumerate(groups):
            if batches.over_budget(self):
                self._give_back([(0.0, 0, e.change) for later in groups[number:] for e in later])
                break
            changes += batches.send(self, chunk, counts)
        # (due on the monotonic clock, position, change): retries wait here, inside the batch.
        queue = [(0.0, i, change) for i, change in enumerate(changes)]
        budget = settings.CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS
        while queue:
            due_at, position, change = heapq.heappop(queue)
            wait = due_at - time.monotonic()
            if time.monotonic() + max(0.0, wait) - self.started > budget:
                self._give_back([(due_at, position, change), *queue])
                break
            if wait > 0:
                self.acks.flush()
                self._sleep(wait)
            if due_at and not self.lease.count_attempt(change):  # an inline retry: an attempt
                continue
            outcome, retry_in = self.push(change)
            counts[outcome] = counts.get(outcome, 0) + 1
            if retry_in is not None:
                heapq.heappush(queue, (time.monotonic() + retry_in, position, change))
        return counts

    def _give_back(self, left: list) -> None:
        """The time budget is spent: the changes still waiting go back to the outbox."""
        for left_due, _, change in left:
            self.lease.release(
                change,
                delay=max(0.0, left_due - time.monotonic()),
                reason=BUDGET_REACHED,
                # A first attempt was counted at take() but never made; a waiting retry's
                # attempt is only counted when it is made.
                attempted=bool(left_due),
            )

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 5.0))
            self.lease.renew(force=True)

    # -- one change --------------------------------------------------------------------------

    def push(self, change: OutboundChange) -> tuple[str, float | None]:
        """Push one change; (outcome, seconds until an inline retry or None)."""
        with tracing.span_of(_span, change) as traced:
            outcome, retry_in = self._push(change)
            if traced is not None:
                tracing.set_span_attributes(outcome=outcome)
            return outcome, retry_in

    def _push(self, change: OutboundChange) -> tuple[str, float | None]:
        self.lease.renew()
        started = time.perf_counter()
        provider = change.integration.provider
        with bound(correlation_id=change.correlation_id or None):
            try:
                outcome = self.attempt(change, self.context(change))
            except LeaseLost:
                log.warning("outbound.lease_lost", change_id=str(change.pk))
                return "lease_lost", None
            except Exception as exc:
                tracing.record_error(exc)
                if not failures.is_expected(exc):
                    log.exception("outbound.push_crashed", change_id=str(change.pk))
                known = self.contexts.get((change.integration_id, change.entity_type))
                return failures.failed(
                    self.lease,
                    change,
                    exc,
                    time.perf_counter() - started,
                    ctx=known if isinstance(known, PushContext) else None,
                    started=self.started,
                )
        duration = time.perf_counter() - started
        metrics.PUSH_DURATION.labels(provider, change.operation).observe(duration)
        metrics.PUSHES.labels(provider, change.operation, outcome).inc()
        return outcome, None

    def context(self, change: OutboundChange) -> PushContext:
        key = (change.integration_id, change.entity_type)
        if key not in self.contexts:
            try:
                self.contexts[key] = build_context(change)
            except Exception as exc:  # a broken configuration fails every change alike
                self.contexts[key] = exc
        found = self.contexts[key]
        if isinstance(found, Exception):
            raise found
        return found

    def attempt(self, change: OutboundChange, ctx: PushContext) -> str:
        if not ctx.integration.is_operational:
            self.lease.release(
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
            return self.lease.skip(change, "the record no longer exists")
        return writes.write(self, change, ctx, record)


def _span(change: OutboundChange) -> tuple[str, dict]:
    """The span of one pushed change (tracing on only): ids, never the record's data."""
    return f"push {change.operation} {change.entity_type}", {
        "tenant": change.tenant_id,
        "integration": change.integration_id,
        "provider": change.integration.provider,
        "change": change.pk,
        "record": change.record_id,
        "entity_type": change.entity_type,
        "operation": change.operation,
        "attempt": change.attempts,
    }
