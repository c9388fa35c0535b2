"""The remote check before a push: has the provider's copy moved since the last sync, and if
both sides changed the same fields, what the task's push policy does about it.

``local_wins`` (the default) pushes anyway. ``remote_wins``: the remote keeps the fields
both sides changed, the local edit's other fields still go out, and the provider's copy
becomes the record. ``manual``: the change (and the record's later ones) is held and a
``Conflict`` is opened for an operator. Changes to different fields are no conflict: an
update sends only the fields that changed locally (the same clean merge the pull makes,
``syncing.inbound.conflicts``).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from integrations.adapters.base import PushResult
from integrations.adapters.normalize import parse_timestamp
from syncing.models import Conflict, OutboundChange, PushConflictStrategy
from syncing.outbound.context import PushContext
from syncing.records import history
from syncing.records.diff import conflicting_fields
from syncing.records.hashing import content_hash

Status = OutboundChange.Status
Operation = OutboundChange.Operation


def remote_changed(ctx: PushContext, record, current: PushResult) -> bool:
    """Has the provider's copy moved since the last sync (its base)?"""
    if record.remote_version and current.version:
        return current.version != record.remote_version
    remote = ctx.mapped(current.record)
    return remote is not None and content_hash(remote) != record.base_hash


def conflicting(ctx: PushContext, record, current: PushResult) -> list[str]:
    """Fields both the local edit and the provider changed, differently, since the base
    (empty: the two sides' changes touch different fields)."""
    remote = ctx.mapped(current.record) or {}
    return conflicting_fields(record.base_data, record.data, remote)


def on_remote_change(batch, change, ctx: PushContext, record, current: PushResult) -> str:
    """The remote changed what this change changes: apply the task's push policy.

    ``batch``: the push batch (its ``lease``, ``acks`` and ``store``)."""
    remote = ctx.mapped(current.record) or {}
    if ctx.strategy == PushConflictStrategy.REMOTE_WINS:
        return _remote_wins(batch, change, ctx, record, current, remote)
    # manual: hold the change (and the record's later ones) until an operator decides.
    with transaction.atomic():
        batch.lease.write(
            change,
            status=Status.CONFLICT,
            lease_owner="",
            lease_expires_at=None,
            # Nothing was applied (a refused conditional write or only a read): once
            # released it is a new request, under a new key (the provider may have stored
            # its 412 under the old one).
            key_generation=F("key_generation") + 1,
            status_reason="the remote changed since the last sync; held for review",
            attempt_log=batch.lease.log(change, "conflict"),
        )
        if not Conflict.objects.filter(record_id=record.id, status="open").exists():
            Conflict.objects.create(
                tenant_id=change.tenant_id,
                task=ctx.task,
                record_id=record.id,
                entity_type=record.entity_type,
                external_id=record.external_id,
                fields=conflicting_fields(record.base_data, record.data, remote),
                base_data=record.base_data,
                local_data=record.data,
                remote_data=remote,
                remote_updated_at=parse_timestamp(ctx.adapter.updated_at(current.record)),
            )
    return "conflict"


def _remote_wins(batch, change, ctx: PushContext, record, current, remote: dict) -> str:
    conflicting_now = conflicting(ctx, record, current)
    rest = [f for f in change.fields or [] if f not in conflicting_now]
    if change.operation == Operation.UPDATE and rest:
        # The remote wins the fields both sides changed; the local edit's other fields still
        # go out (only they are sent), and the provider's answer — its values and ours —
        # becomes the record.
        result = ctx.adapter.update(
            current.external_id,
            ctx.mapping.to_remote(record.data, rest),
            idempotency_key=f"{change.idempotency_key}.remote-wins",
        )
        note = (
            f"the remote changed {', '.join(sorted(conflicting_now))} too: remote wins "
            f"there; pushed {', '.join(rest)}"
        )
        return batch.acks.add(change, ctx, record, result, notes=[note])
    # The remote's copy becomes the record, except fields a later local change edited:
    # those edits are still to be pushed (and judged) by their own change.
    later = later_fields(record.id, change.pk)
    data = {k: v for k, v in remote.items() if k not in later}
    data.update({k: v for k, v in record.data.items() if k in later})
    with transaction.atomic(), batch.store.atomic():
        batch.lease.finish(
            change,
            Status.SKIPPED,
            status_reason="the remote changed since the last sync; remote wins",
        )
        saved = batch.store.save_record(
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
        change_seen = history.classify(record, saved)
        if change_seen is not None:
            history.local_change(saved, *change_seen, origin="push", source_id=change.pk)
    return "skipped"


def later_fields(record_id, change_pk) -> set[str]:
    """Fields edited by the record's open changes other than ``change_pk`` (later ones)."""
    later = OutboundChange.objects.filter(record_id=record_id, status__in=OutboundChange.OPEN)
    return {
        name
        for fields in later.exclude(pk=change_pk).values_list("fields", flat=True)
        for name in fields or []
    }
