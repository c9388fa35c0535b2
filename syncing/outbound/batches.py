"""Provider batches inside a push batch: many changes, one request.

An adapter that declares batch endpoints (``Adapter.batch_support``) gets the push batch's
changes of one tenant, integration, entity type and operation in groups of up to its
``max_size`` — never two changes of one record in one group (a record's changes stay in
order) —, sent with ``Adapter.push_many``: one request, so the rate limiter counts one. Each
item's answer goes back to its own change: a result is recorded like a single push's
(``acknowledge.py``), a failure is classified like a single push's (``failures.py``: retried
later, in a later batch and under the same key, or a dead letter for that change alone).
A failure of the whole request (a 429, a timeout, the limiter's refusal) is every item's.

What a batch cannot express goes one by one (``writes.py``), exactly as for adapters without
batches: conditional updates (``If-Match``), the remote checks of ``remote_wins``/``manual``,
creates retried where only a marker lookup keeps them single (no idempotent batch creates),
paused integrations, records that are gone or not created yet — and the changes of a batch
the provider refused as a whole with a permanent error (nothing applied; one by one, only the
bad items fail).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from castiel.db.leases import LeaseLost
from castiel.http.errors import PERMANENT, RETRY, next_step
from castiel.observability import tracing
from castiel.observability.logging import get_logger
from integrations.adapters.base import BatchItem, ItemFailed, ItemOutcome
from syncing import metrics
from syncing.models import OutboundChange, PushConflictStrategy
from syncing.outbound import failures
from syncing.outbound.context import PushContext
from syncing.records.outbox import is_pending_external_id

log = get_logger(__name__)

Status = OutboundChange.Status
Operation = OutboundChange.Operation
LOCAL_WINS = PushConflictStrategy.LOCAL_WINS
GONE = (404, 410)


@dataclass
class _Entry:
    change: OutboundChange
    ctx: PushContext
    record: object
    item: BatchItem


def split(batch, changes: list[OutboundChange]) -> tuple[list[list[_Entry]], list]:
    """(provider batches, the changes that go one by one), both in the changes' order."""
    groups: dict[tuple, list[list[_Entry]]] = {}
    singles = []
    for change in changes:
        entry = _entry(batch, change)
        if entry is None:
            singles.append(change)
            continue
        support = entry.ctx.adapter.batch_support
        key = (change.tenant_id, change.integration_id, change.entity_type, change.operation)
        chunks = groups.setdefault(key, [])
        # The first chunk with room that holds no change of this record.
        for chunk in chunks:
            if len(chunk) < support.max_size and all(
                e.change.record_id != change.record_id for e in chunk
            ):
                chunk.append(entry)
                break
        else:
            chunks.append([entry])
    batched = []
    for chunks in groups.values():
        for chunk in chunks:
            if len(chunk) > 1:
                batched.append(chunk)
            else:  # one change: its single request is one request too
                singles.append(chunk[0].change)
    singles.sort(key=changes.index)
    return batched, singles


def _entry(batch, change: OutboundChange) -> _Entry | None:
    """The change as a batch item, or None when it goes one by one."""
    try:
        ctx = batch.context(change)
    except Exception:
        return None  # the single path records the broken configuration
    support = ctx.adapter.batch_support
    if support is None or not support.covers(change.operation):
        return None
    if not ctx.integration.is_operational:
        return None
    record = batch.records.get(change.record_id)
    if record is None:
        return None
    strategy = LOCAL_WINS if change.force else ctx.strategy
    pending = is_pending_external_id(record.external_id)
    key = change.idempotency_key
    if change.operation == Operation.CREATE:
        if not pending:
            return None  # an earlier attempt's result is on the record already
        if change.attempts > 1 and not support.idempotent_creates:
            return None  # only the single path's marker lookup keeps it from landing twice
        return _Entry(
            change, ctx, record, BatchItem(key=key, payload=ctx.mapping.to_remote(record.data))
        )
    if pending or strategy != LOCAL_WINS:
        return None
    if change.operation == Operation.UPDATE:
        if record.deleted_at is not None:
            return None
        if ctx.adapter.supports_conditional_writes and record.remote_version and not change.force:
            return None  # If-Match is per request: conditional updates go one by one
        payload = ctx.mapping.to_remote(record.data, change.fields or None)
        return _Entry(
            change, ctx, record, BatchItem(key=key, external_id=record.external_id, payload=payload)
        )
    return _Entry(change, ctx, record, BatchItem(key=key, external_id=record.external_id))


def send(batch, chunk: list[_Entry], counts: dict[str, int]) -> list[OutboundChange]:
    """One provider request for ``chunk``; every item's outcome recorded on its change.
    Returns the changes to push one by one instead (the request was refused as a whole)."""
    with tracing.span_of(_span, chunk) as traced:
        if traced is None:
            return _send(batch, chunk, counts)
        mine: dict[str, int] = {}
        one_by_one = _send(batch, chunk, mine)
        for outcome, number in mine.items():
            counts[outcome] = counts.get(outcome, 0) + number
        if one_by_one:  # refused as a whole: each change follows as a single push
            tracing.set_span_attributes(outcome="refused")
        else:
            tracing.set_span_attributes(outcome=next(iter(mine)) if len(mine) == 1 else "mixed")
        return one_by_one


def _span(chunk: list[_Entry]) -> tuple[str, dict]:
    """The span of one provider batch (tracing on only): its changes' ids, never data."""
    change = chunk[0].change
    return f"push {change.operation} {change.entity_type}", {
        "tenant": change.tenant_id,
        "integration": change.integration_id,
        "provider": change.integration.provider,
        "entity_type": change.entity_type,
        "operation": change.operation,
        "count": len(chunk),
        "change": [entry.change.pk for entry in chunk],
    }


def _send(batch, chunk: list[_Entry], counts: dict[str, int]) -> list[OutboundChange]:
    first = chunk[0]
    adapter, operation = first.ctx.adapter, first.change.operation
    provider = first.change.integration.provider
    batch.lease.renew()
    started = time.perf_counter()
    shared = None  # when the whole request failed, retryably: when all its changes are due
    try:
        outcomes = adapter.push_many(operation, [entry.item for entry in chunk])
    except Exception as exc:
        tracing.record_error(exc)
        if not failures.is_expected(exc):
            log.exception("outbound.batch_crashed", operation=operation, size=len(chunk))
        if len(chunk) > 1 and next_step(exc) == PERMANENT:
            # Refused as a whole (a provider whose batch fails when one item does): nothing
            # was applied; one by one, only the bad items fail.
            log.info("outbound.batch_refused", operation=operation, size=len(chunk))
            return [entry.change for entry in chunk]
        outcomes = {entry.item.key: ItemOutcome(error=exc) for entry in chunk}
        if next_step(exc) == RETRY:
            # One backoff for the whole batch: its changes come due together and go out in
            # one request again (each drawing its own would scatter them).
            shared = timezone.now() + timedelta(
                seconds=first.ctx.retries.delay(
                    first.change.attempts, retry_after=getattr(exc, "retry_after", None)
                )
            )
    duration = time.perf_counter() - started
    log.info("outbound.batch_pushed", operation=operation, size=len(chunk), seconds=duration)
    _describe_item_failures(adapter, chunk, outcomes)
    with batch.acks.one_group():
        for entry in chunk:
            outcome = outcomes.get(entry.item.key) or ItemOutcome(
                error=ItemFailed("the batch answer has no result for this item", retryable=True)
            )
            try:
                result = _record(batch, entry, outcome, duration, shared)
            except LeaseLost:
                log.warning("outbound.lease_lost", change_id=str(entry.change.pk))
                result = "lease_lost"
            counts[result] = counts.get(result, 0) + 1
            metrics.PUSHES.labels(provider, operation, result).inc()
    metrics.PUSH_DURATION.labels(provider, operation).observe(duration)
    return []


def _describe_item_failures(adapter, chunk: list[_Entry], outcomes: dict) -> None:
    """An item's own failure is described, for its dead letter, as the batch's request with
    that item alone as its body: the operator sees what was sent for this change — not the
    other items' data, and not a hundred items redacted and encoded per failed one."""
    batch_request = None
    for entry in chunk:
        outcome = outcomes.get(entry.item.key)
        error = outcome.error if outcome is not None else None
        if not isinstance(error, ItemFailed):
            continue
        if batch_request is None:
            batch_request = adapter.describe_request()
        error.request_described = {**batch_request, "body": entry.item.payload}


def _record(batch, entry: _Entry, outcome: ItemOutcome, duration: float, shared=None) -> str:
    change, ctx = entry.change, entry.ctx
    error = outcome.error
    if error is None and outcome.result is None:
        error = ItemFailed("the batch answer has neither a result nor an error", retryable=True)
    if error is None:
        try:
            if change.operation == Operation.DELETE:
                return batch.lease.finish(
                    change,
                    Status.SUCCEEDED,
                    remote_id=entry.item.external_id,
                    replayed=outcome.result.replayed,
                )
            return batch.acks.add(change, ctx, entry.record, outcome.result)
        except Exception as exc:
            error = exc
    if change.operation == Operation.DELETE and getattr(error, "status", None) in GONE:
        return batch.lease.finish(
            change, Status.SUCCEEDED, remote_id=entry.item.external_id, status_reason="already gone"
        )
    outcome_name, _ = failures.failed(
        batch.lease,
        change,
        error,
        duration,
        ctx=ctx,
        started=batch.started,
        inline=False,
        due_at=shared if outcome.error is not None else None,
    )
    return outcome_name


def over_budget(batch) -> bool:
    return time.monotonic() - batch.started > settings.CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS
