"""Pushing one change through the adapter: create, update or delete, with the change's
idempotency key, after the remote check its task's push policy asks for.

``local_wins`` (the default) writes conditionally where the adapter supports it (a refused
conditional write is pushed again, unconditionally); ``remote_wins``/``manual`` compare the
remote with the last synced base first (``remote_check.py``). A create whose earlier attempt
may have landed is looked up by its marker before it is sent again.

``batch`` below is the push batch: its ``lease`` (fenced outcomes), ``acks`` (grouped
results) and ``store``.
"""

from __future__ import annotations

from integrations.adapters.base import PushResult, RemoteChanged
from syncing.models import OutboundChange, PushConflictStrategy
from syncing.outbound import remote_check
from syncing.outbound.context import PushContext
from syncing.outbound.failures import RemoteMissing
from syncing.records.outbox import is_pending_external_id

Status = OutboundChange.Status
Operation = OutboundChange.Operation
LOCAL_WINS = PushConflictStrategy.LOCAL_WINS


def write(batch, change: OutboundChange, ctx: PushContext, record) -> str:
    """Push ``change`` of ``record``; its outcome."""
    if change.operation == Operation.CREATE:
        return create(batch, change, ctx, record)
    if change.operation == Operation.UPDATE:
        return update(batch, change, ctx, record)
    return delete(batch, change, ctx, record)


def create(batch, change, ctx: PushContext, record) -> str:
    if not is_pending_external_id(record.external_id):
        # An earlier attempt's result was recorded on the record already (the Cosmos DB
        # store commits it separately from the change row).
        return batch.lease.finish(change, Status.SUCCEEDED, remote_id=record.external_id)
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
    return batch.acks.add(change, ctx, record, result)


def update(batch, change, ctx: PushContext, record) -> str:
    if record.deleted_at is not None:
        return batch.lease.skip(change, "the record was deleted locally; its delete follows")
    external_id = record.external_id
    if is_pending_external_id(external_id):
        raise RemoteMissing("the record was never created at the provider")
    payload = ctx.mapping.to_remote(record.data, change.fields or None)
    strategy = LOCAL_WINS if change.force else ctx.strategy
    adapter = ctx.adapter
    conditional = (
        adapter.supports_conditional_writes and bool(record.remote_version) and not change.force
    )
    if strategy != LOCAL_WINS and not conditional:
        current = adapter.get_one(external_id)
        if current is None:
            raise RemoteMissing(f"{change.entity_type} {external_id} does not exist remotely")
        if remote_check.remote_changed(ctx, record, current) and remote_check.conflicting(
            ctx, record, current
        ):
            return remote_check.on_remote_change(batch, change, ctx, record, current)
    notes = []
    try:
        result = adapter.update(
            external_id,
            payload,
            idempotency_key=change.idempotency_key,
            if_version=record.remote_version if conditional else None,
        )
    except RemoteChanged:
        if strategy == LOCAL_WINS:
            notes.append("the remote changed since the last sync; local wins: pushed anyway")
        else:
            current = adapter.get_one(external_id)
            if current is None:
                raise RemoteMissing(f"{external_id} was deleted remotely") from None
            if remote_check.conflicting(ctx, record, current):
                return remote_check.on_remote_change(batch, change, ctx, record, current)
            notes.append(
                "the remote changed since the last sync, but none of the fields pushed: "
                "pushed (the provider's other changes stay)"
            )
        # A new key: the provider keeps its 412 under the first one (and would replay it);
        # the refused request applied nothing, so this cannot apply anything twice.
        result = adapter.update(
            external_id, payload, idempotency_key=f"{change.idempotency_key}.unconditional"
        )
    return batch.acks.add(change, ctx, record, result, notes=notes)


def delete(batch, change, ctx: PushContext, record) -> str:
    external_id = record.external_id
    if is_pending_external_id(external_id):
        return batch.lease.skip(change, "the record was never created at the provider")
    strategy = LOCAL_WINS if change.force else ctx.strategy
    adapter = ctx.adapter
    if strategy != LOCAL_WINS:
        current = adapter.get_one(external_id)
        if current is None:
            return batch.lease.finish(change, Status.SUCCEEDED, status_reason="already gone")
        if remote_check.remote_changed(ctx, record, current):
            return remote_check.on_remote_change(batch, change, ctx, record, current)
    try:
        result = adapter.delete(external_id, idempotency_key=change.idempotency_key)
    except Exception as exc:
        if getattr(exc, "status", None) in (404, 410):
            return batch.lease.finish(
                change, Status.SUCCEEDED, remote_id=external_id, status_reason="already gone"
            )
        raise
    return batch.lease.finish(
        change, Status.SUCCEEDED, remote_id=external_id, replayed=result.replayed
    )
