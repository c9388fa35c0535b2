"""Recording successful pushes: each change's outcome and its record's new state, in groups.

A result is the change's row (``succeeded``, remote id and version) and the record's remote
id, version and pushed hash (``RecordStore.mark_pushed``: the next pull recognises its echo),
committed together and fenced by the lease. Results are committed in groups (one
transaction, one commit for several pushes) when sending a change again after a crash is
harmless: the provider honours the idempotency key, or the write is an update/delete of
content that is already there. A create that could land twice is committed at once.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from castiel.observability.logging import get_logger
from integrations.adapters.base import PushResult
from integrations.adapters.normalize import parse_timestamp
from syncing.models import OutboundChange
from syncing.outbound.context import PushContext
from syncing.outbound.fencing import BatchLease, fenced_update_many
from syncing.records import history
from syncing.records.diff import changed_fields
from syncing.records.hashing import content_hash

log = get_logger(__name__)

ACK_GROUP_SECONDS = 0.2  # a push result waits at most this long for its group's commit
Status = OutboundChange.Status
Operation = OutboundChange.Operation


@dataclass
class _Ack:
    change: OutboundChange
    fields: dict
    push: dict
    record: object = None  # the record as the push read it (for its history)
    at: float = field(default_factory=time.monotonic)


class Acks:
    """The batch's successful pushes waiting for their group's commit."""

    def __init__(self, lease: BatchLease, store):
        self.lease = lease
        self.store = store
        self.pending: list[_Ack] = []
        self.grouping = False

    def add(self, change, ctx: PushContext, record, result: PushResult, notes=()) -> str:
        """Record a successful write: the change's result and what the provider now holds."""
        raw, version = result.record, result.version
        if raw is None:
            # The provider answered without the record (e.g. 204): read it back once, so the
            # pushed hash (and with it the echo of the next pull) is known.
            current = ctx.adapter.get_one(result.external_id)
            if current is not None:
                raw, version = current.record, version or current.version
        remote = ctx.mapped(raw)
        pushed_hash = content_hash(remote) if remote is not None else ""
        updated_at = parse_timestamp(ctx.adapter.updated_at(raw)) if raw else None
        self.pending.append(
            _Ack(
                change=change,
                fields=self.lease.finish_fields(
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
        harmless = ctx.adapter.supports_idempotency_keys or change.operation != Operation.CREATE
        if not harmless or (
            not self.grouping
            and (
                len(self.pending) >= settings.CASTIEL_OUTBOUND_ACK_GROUP
                or time.monotonic() - self.pending[0].at > ACK_GROUP_SECONDS
            )
        ):
            self.flush()
        return "succeeded"

    @contextmanager
    def one_group(self):
        """The results recorded inside commit together when it ends: a provider batch's items
        came in one answer, so they are recorded in one group, whatever its size."""
        self.grouping = True
        try:
            yield
        finally:
            self.grouping = False
        self.flush()

    def flush(self) -> None:
        """Commit the pending push results: each change's outcome and its record's new state
        (``mark_pushed``) together, fenced by the lease."""
        acks, self.pending = self.pending, []
        if not acks:
            return
        with transaction.atomic(), self.store.atomic():  # one commit (ORM store)
            held = fenced_update_many(
                self.lease.token, [(ack.change.pk, ack.fields) for ack in acks]
            )
            edited_since = records_with_later_changes([ack.change for ack in acks])
            recorded = []
            for ack in acks:
                if ack.change.pk not in held:
                    log.warning("outbound.lease_lost", change_id=str(ack.change.pk))
                    continue  # its new holder pushes it again (same key) and records it
                recorded.append(ack)
            # mark_pushed for the group: whether each record's data became the provider's copy.
            took = self.store.mark_pushed_many(
                [
                    {**ack.push, "keep_local": ack.change.record_id in edited_since}
                    for ack in recorded
                ]
            )
            history.written_back(
                # The provider's copy differs from what was pushed: it is the data now.
                (ack.record, changed_fields(ack.record.data, ack.push["remote"]), ack.change.pk)
                for ack, data_is_remote in zip(recorded, took, strict=True)
                if data_is_remote and ack.push["pushed_hash"] != ack.record.content_hash
            )


def records_with_later_changes(changes) -> set:
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
