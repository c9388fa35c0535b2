"""Writes for sync tasks and conflicts (keyword-only, one job each)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from integrations.adapters.base import AdapterError
from integrations.adapters.mapping import FieldMapping, MappingError
from syncing.inbound import conflicts as conflict_rules
from syncing.inbound import scheduler
from syncing.inbound.dedup import DedupConfigError, strategy_for
from syncing.inbound.next_run import MIN_INTERVAL_SECONDS, validate_cron
from syncing.models import Conflict, OutboundChange, SyncTask
from syncing.records import history, outbox
from syncing.records.diff import changed_fields
from syncing.records.hashing import content_hash
from syncing.records.notices import conflicts_maybe_cleared
from syncing.records.stores import get_store


def sync_task_config_errors(
    *,
    integration,
    entity_type: str,
    field_mapping,
    dedup_strategy: str,
    dedup_config,
    conflict_strategy: str,
    conflict_config,
    interval_seconds: int,
    cron: str,
) -> dict[str, str]:
    """Everything a task's configuration can get wrong, as field errors."""
    errors: dict[str, str] = {}
    try:
        FieldMapping(field_mapping)
    except MappingError as exc:
        errors["field_mapping"] = str(exc)
    try:
        strategy_for(dedup_strategy, dedup_config)
    except DedupConfigError as exc:
        errors["dedup_config"] = str(exc)
    try:
        conflict_rules.validate_config(conflict_strategy, conflict_config)
    except conflict_rules.ConflictConfigError as exc:
        errors["conflict_config"] = str(exc)
    if cron:
        message = validate_cron(cron)
        if message:
            errors["cron"] = message
    elif interval_seconds < MIN_INTERVAL_SECONDS:
        errors["interval_seconds"] = f"must be at least {MIN_INTERVAL_SECONDS} seconds"
    if integration is not None:
        provider = integration.provider_info
        if not provider.adapter:
            errors["integration"] = f"provider {provider.slug!r} cannot be synced (no adapter)"
        elif provider.entity_types and entity_type not in provider.entity_types:
            errors["entity_type"] = (
                f"{provider.name} syncs {', '.join(provider.entity_types)}, not {entity_type!r}"
            )
        else:
            from integrations.adapters.base import adapter_for

            try:
                adapter_for(integration, entity_type).validate()
            except AdapterError as exc:
                errors["integration"] = f"integration config: {exc}"
    return errors


def sync_task_run_now(*, task: SyncTask) -> bool:
    """Queue the task now (True), or flag it to run again when its current run ends."""
    return scheduler.run_now(task)


def sync_task_pause(*, task: SyncTask) -> SyncTask:
    """Stop scheduling (a run in progress finishes its current execution)."""
    SyncTask.objects.filter(pk=task.pk).update(enabled=False)
    SyncTask.objects.filter(pk=task.pk, lease_owner="").update(status=SyncTask.Status.PAUSED)
    task.refresh_from_db()
    return task


def sync_task_resume(*, task: SyncTask) -> SyncTask:
    SyncTask.objects.filter(pk=task.pk).update(enabled=True)
    SyncTask.objects.filter(pk=task.pk, status=SyncTask.Status.PAUSED).update(
        status=SyncTask.Status.IDLE
    )
    task.refresh_from_db()
    return task


def sync_task_reset_cursor(*, task: SyncTask) -> bool:
    """Forget where the task's runs left off: the checkpoint of an interrupted run and the
    incremental watermark, so the next run reads everything again (existing records are
    matched, not duplicated). Refused (False) while a run holds the task: its next page
    would write the checkpoint back."""
    with transaction.atomic():
        current = SyncTask.objects.select_for_update().filter(pk=task.pk).first()
        if current is None or current.lease_owner:
            return False
        state = {k: v for k, v in (current.state or {}).items() if k != "watermark"}
        # The lease condition again: SQLite has no row locks (its IMMEDIATE transaction
        # already serialises writers, so this is belt and braces there).
        reset = SyncTask.objects.filter(pk=task.pk, lease_owner="").update(
            checkpoint={}, state=state
        )
    task.refresh_from_db()
    return bool(reset)


class ConflictError(ValueError):
    pass


def conflict_resolve(
    *, conflict: Conflict, resolution: str, data: dict | None = None, by: str = ""
) -> Conflict:
    """Apply an operator's decision: the record takes the chosen data; the remote version
    becomes its base, so the next sync does not raise the same conflict again."""
    from syncing.outbound import local_changes

    store = get_store()
    with local_changes.written_together(store) as undo:
        resolved = _resolve(conflict, resolution, data, by, store, undo)
        task = resolved.task
        conflicts_maybe_cleared(task.tenant_id, task.integration_id)
        return resolved


def _resolve(conflict, resolution, data, by, store, undo) -> Conflict:
    conflict = Conflict.objects.select_for_update().get(pk=conflict.pk)
    if conflict.status != Conflict.Status.OPEN:
        raise ConflictError("this conflict is already resolved")
    if resolution == Conflict.Resolution.REMOTE:
        chosen = conflict.remote_data
    elif resolution == Conflict.Resolution.LOCAL:
        chosen = conflict.local_data
    elif resolution == Conflict.Resolution.MERGED:
        if not isinstance(data, dict):
            raise ConflictError("a merged resolution needs 'data' (a JSON object)")
        chosen = data
    else:
        raise ConflictError("resolution must be remote, local or merged")
    record = store.get(conflict.tenant_id, conflict.record_id)
    if record is None:
        raise ConflictError("the record no longer exists")
    if resolution == Conflict.Resolution.LOCAL:
        # The local version as it is now: edits made after the conflict opened are local too
        # (and their outbound changes are queued behind it), so they must not be undone.
        chosen = record.data
    now = timezone.now()
    changed = chosen != record.data
    held = OutboundChange.objects.filter(
        record_id=conflict.record_id, status=OutboundChange.Status.CONFLICT
    ).first()
    undelete = (
        held is not None
        and held.operation == OutboundChange.Operation.DELETE
        and resolution == Conflict.Resolution.REMOTE
    )
    saved = store.save_record(
        record.copy(
            data=chosen,
            content_hash=content_hash(chosen),
            base_data=conflict.remote_data,
            base_hash=content_hash(conflict.remote_data),
            remote_updated_at=conflict.remote_updated_at or record.remote_updated_at,
            local_updated_at=now
            if resolution != Conflict.Resolution.REMOTE
            else record.local_updated_at,
            version=record.version + (1 if changed or undelete else 0),
            **({"deleted_at": None} if undelete else {}),
        )
    )
    undo.append(lambda: store.save_record(record.copy(etag=saved.etag)))
    if changed or undelete:
        action = "restored" if undelete else "updated"
        fields = changed_fields(record.data, chosen)
        history.local_change(
            saved, action, fields, origin="conflict", actor=by, source_id=conflict.pk
        )
    _push_resolution(conflict, saved, chosen, resolution, held, by)
    conflict.status = Conflict.Status.RESOLVED
    conflict.resolution = resolution
    conflict.resolved_data = chosen
    conflict.resolved_by = by[:200]
    conflict.resolved_at = now
    conflict.save()
    return conflict


def _push_resolution(conflict, record, chosen: dict, resolution: str, held, by: str) -> None:
    """Two-way sync: what the operator chose must also reach the provider.

    A push held for this conflict is released (``force``: no second version check) when
    local or merged data won, and skipped when the remote won. Without a held push, data
    that differs from the remote version is queued as an update (same transaction).
    """
    now = timezone.now()
    remote = conflict.remote_data or {}
    to_push = changed_fields(chosen, remote)
    if held is not None:
        if resolution == Conflict.Resolution.REMOTE:
            OutboundChange.objects.filter(pk=held.pk).update(
                status=OutboundChange.Status.SKIPPED,
                status_reason=f"conflict resolved by {by or 'an operator'}: remote wins",
                finished_at=now,
            )
            return
        OutboundChange.objects.filter(pk=held.pk).update(
            status=OutboundChange.Status.PENDING,
            force=True,
            fields=sorted(set(held.fields) | set(to_push)),
            next_attempt_at=now,
            status_reason=f"conflict resolved by {by or 'an operator'}: {resolution}",
        )
    elif to_push and not outbox.is_pending_external_id(record.external_id):
        outbox.queue_change(
            record,
            OutboundChange.Operation.UPDATE,
            to_push,
            origin=OutboundChange.Origin.CONFLICT,
            actor=by,
        )
    else:
        return
    outbox.wake_after_commit()
