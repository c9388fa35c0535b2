"""Webhook follow-ups the sync engine performs (registered in ``SyncingConfig.ready()``).

A webhook names one changed record. The record goes through the same pipeline as a pulled
page (mapping, dedup, conflict check, no-echo, upsert) using the sync task that owns that
entity type, so a record that arrives by webhook is indistinguishable from one that arrives
by pull — and the next pull finds it unchanged.

Contract (``webhooks.routing``): ``fn(event, context) -> dict | None``, idempotent; an error
with ``retryable = False`` fails the event, anything else is retried with backoff.
"""

from __future__ import annotations

from django.utils import timezone

from castiel.observability.logging import get_logger
from integrations.adapters.base import adapter_for
from integrations.models import Integration
from syncing.inbound import scheduler
from syncing.inbound.pipeline import PipelineConfigError, pipeline_for_task
from syncing.models import SyncTask
from syncing.records import history
from syncing.records.hashing import record_id
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope

log = get_logger(__name__)


class WebhookActionError(Exception):
    """The event cannot be applied as configured; retrying cannot help."""

    retryable = False


def _task_for(event, context) -> SyncTask | None:
    if not context.integration_id:
        raise WebhookActionError("the webhook registration is not linked to an integration")
    if not event.entity_type or not event.external_id:
        raise WebhookActionError("the event names no record (entity type and external id)")
    return (
        SyncTask.objects.select_related("integration", "tenant")
        .filter(
            tenant_id=context.tenant_id,
            integration_id=context.integration_id,
            entity_type=event.entity_type,
            direction=SyncTask.Direction.INBOUND,
        )
        .order_by("-enabled", "created_at")
        .first()
    )


def _ignored(event, why: str) -> dict:
    log.info("webhook.action_ignored", entity_type=event.entity_type, reason=why)
    return {"outcome": "ignored", "reason": why}


def _check_operational(integration: Integration) -> None:
    if not integration.is_operational:
        # Not permanent: once the integration is re-authorised or resumed, a retry applies it.
        raise RuntimeError(
            f"integration {integration.name!r} is {integration.status}"
            f"{' and disabled' if not integration.enabled else ''}: waiting to apply the event"
        )


class _WebhookAdapter:
    """The task's adapter, told by the webhook whether the record was deleted and when.

    Providers whose records carry no modification time (a Stripe customer) promise no event
    order either; the event's own time then stands in for it, so an older event delivered
    after a newer one is recognised as out of order instead of overwriting the newer data.
    Everything else (the record's id, version, identity fields, our-own-write marker) is the
    adapter's own answer, exactly as in a pull.
    """

    def __init__(self, adapter, event):
        self._adapter = adapter
        self._event = event

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def updated_at(self, raw):
        own = self._adapter.updated_at(raw)
        if own is None and self._event.occurred_at is not None:
            return self._event.occurred_at.isoformat()
        return own

    def is_deleted(self, raw):
        return self._event.deleted or self._adapter.is_deleted(raw)


def upsert_record(event, context) -> dict:
    """The payload is the complete record: apply it as a one-record page."""
    task = _task_for(event, context)
    if task is None:
        return _ignored(event, f"no inbound sync task for {event.entity_type!r}")
    _check_operational(task.integration)
    store = get_store()
    try:
        pipeline = pipeline_for_task(
            task,
            adapter=_WebhookAdapter(adapter_for(task.integration, task.entity_type), event),
            store=store,
            source=("webhook", context.webhook_event_id),
        )
    except PipelineConfigError as exc:
        raise WebhookActionError(f"sync task {task.pk} is misconfigured: {exc}") from None
    with store.atomic():
        result = pipeline.apply([event.payload])
    outcome = next((k for k, v in result.counts.items() if v and k != "fetched"), "unchanged")
    if result.errors:
        raise WebhookActionError("; ".join(result.errors))
    return {"outcome": outcome, "task": str(task.pk)}


def delete_record(event, context) -> dict:
    """The provider says the record is gone: soft-delete our copy (a tombstone, as in pull)."""
    task = _task_for(event, context)
    if task is None:
        return _ignored(event, f"no inbound sync task for {event.entity_type!r}")
    _check_operational(task.integration)
    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    rid = record_id(scope.tenant_id, scope.integration_id, scope.entity_type, event.external_id)
    store = get_store()
    with store.atomic():
        existing = store.get_many(scope, [rid], lock=True).get(rid)
        if existing is None or existing.deleted_at is not None:
            return {"outcome": "unchanged", "task": str(task.pk)}
        now = timezone.now()
        gone = existing.copy(deleted_at=now, version=existing.version + 1, synced_at=now)
        store.write(scope, [], [gone])
        history.deleted(gone, source="webhook", source_id=context.webhook_event_id)
    return {"outcome": "deleted", "task": str(task.pk)}


def fetch_entity(event, context) -> dict:
    """Something about the record changed but the payload is not the record: run the owning
    task now (incremental, so it fetches what changed since its watermark)."""
    task = _task_for(event, context)
    if task is None:
        return _ignored(event, f"no inbound sync task for {event.entity_type!r}")
    _check_operational(task.integration)
    queued = scheduler.run_now(task)
    return {"outcome": "sync_queued" if queued else "sync_flagged", "task": str(task.pk)}


def register() -> None:
    from webhooks.routing import register_action

    register_action("sync.upsert_record", upsert_record)
    register_action("sync.delete_record", delete_record)
    register_action("sync.fetch_entity", fetch_entity)
