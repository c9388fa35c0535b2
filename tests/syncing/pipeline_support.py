"""Drive the page pipeline directly (no HTTP) for table-driven dedup and conflict tests."""

from __future__ import annotations

from django.db import transaction

from integrations.adapters.mapping import FieldMapping
from syncing.inbound.dedup import strategy_for
from syncing.inbound.pipeline import PagePipeline
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope
from tests.factories import IntegrationFactory
from tests.syncing.helpers import make_task


class RecordAccessors:
    """The record accessors of the adapter contract, for records shaped like the sandbox's."""

    identity_fields = ("id", "updated_at")

    def external_id(self, record):
        value = record.get("id")
        return None if value in (None, "") else str(value)

    def updated_at(self, record):
        return record.get("updated_at")

    def is_deleted(self, record):
        return bool(record.get("deleted"))


def task_with(tenant, **fields):
    return make_task(IntegrationFactory(tenant=tenant), **fields)


def pipeline_for(task, *, store=None, generation=None) -> PagePipeline:
    """The task's pipeline over records shaped like the sandbox's (one per run: it keeps
    what it learnt from one page for the next)."""
    accessors = RecordAccessors()
    return PagePipeline(
        task=task,
        adapter=accessors,
        mapping=FieldMapping(task.field_mapping),
        strategy=strategy_for(
            task.dedup_strategy, task.dedup_config, identity_fields=accessors.identity_fields
        ),
        store=store or get_store(),
        generation=generation,
    )


def apply_with(pipeline: PagePipeline, records):
    """One page through ``pipeline``, in a page transaction."""
    with transaction.atomic(), pipeline.store.atomic():
        return pipeline.apply(records)


def apply_page(task, records, *, store=None, generation=None):
    return apply_with(pipeline_for(task, store=store, generation=generation), records)


def stored(task, *, store=None, include_deleted=False):
    store = store or get_store()
    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    return {r.external_id: r for r in store.iter_scope(scope, include_deleted=include_deleted)}
