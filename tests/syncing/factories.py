"""Isolation makers for the sync API's models."""

from __future__ import annotations

from django.utils import timezone

from syncing.models import (
    Conflict,
    DeadLetter,
    OutboundChange,
    PushRule,
    Record,
    RecordChange,
    SyncRun,
    SyncTask,
)
from syncing.records.hashing import content_hash, record_id
from tests.factories import IntegrationFactory, isolation_maker


@isolation_maker(SyncTask)
def make_sync_task(tenant):
    integration = IntegrationFactory(tenant=tenant)
    return SyncTask.objects.create(tenant=tenant, integration=integration, entity_type="contacts")


@isolation_maker(SyncRun)
def make_sync_run(tenant):
    task = make_sync_task(tenant)
    return SyncRun.objects.create(tenant=tenant, task=task, mode=task.mode)


@isolation_maker(Record)
def make_record(tenant):
    integration = IntegrationFactory(tenant=tenant)
    data = {"id": "1", "name": "x"}
    return Record.objects.create(
        id=record_id(tenant.id, integration.id, "contacts", "1"),
        tenant=tenant,
        integration=integration,
        entity_type="contacts",
        external_id="1",
        data=data,
        content_hash=content_hash(data),
        base_data=data,
        base_hash=content_hash(data),
        synced_at=timezone.now(),
    )


@isolation_maker(Conflict)
def make_conflict(tenant):
    task = make_sync_task(tenant)
    record = make_record(tenant)
    return Conflict.objects.create(
        tenant=tenant,
        task=task,
        record_id=record.id,
        entity_type="contacts",
        external_id="1",
        local_data={"name": "local"},
        remote_data={"name": "remote"},
        base_data={"name": "x"},
    )


@isolation_maker(OutboundChange)
def make_outbound_change(tenant):
    record = make_record(tenant)
    return OutboundChange.objects.create(
        tenant=tenant,
        integration=record.integration,
        entity_type=record.entity_type,
        record_id=record.id,
        external_id=record.external_id,
        operation="update",
        fields=["name"],
        seq=record.version,
    )


@isolation_maker(DeadLetter)
def make_dead_letter(tenant):
    change = make_outbound_change(tenant)
    change.status = "dead"
    change.save(update_fields=["status"])
    return DeadLetter.objects.create(
        tenant=tenant,
        change=change,
        integration=change.integration,
        entity_type=change.entity_type,
        record_id=change.record_id,
        external_id=change.external_id,
        operation=change.operation,
        error_code="http_422",
        error_message="PATCH failed with HTTP 422",
        response_status=422,
    )


@isolation_maker(PushRule)
def make_push_rule(tenant):
    source = IntegrationFactory(tenant=tenant)
    target = IntegrationFactory(tenant=tenant)
    return PushRule.objects.create(
        tenant=tenant,
        name=f"rule {source.pk}",
        source_integration=source,
        source_entity_type="contacts",
        target_integration=target,
        target_entity_type="contacts",
        field_mapping={"email": "email"},
        match_field="email",
    )


@isolation_maker(RecordChange)
def make_record_change(tenant):
    """A change of a record of ``tenant`` (the change feed lists it)."""
    record = make_record(tenant)
    return RecordChange.objects.create(
        tenant=tenant,
        record_id=record.id,
        integration_id=record.integration_id,
        entity_type=record.entity_type,
        external_id=record.external_id,
        action=RecordChange.Action.CREATED,
        source=RecordChange.Source.SERVICE,
        version=record.version,
    )
