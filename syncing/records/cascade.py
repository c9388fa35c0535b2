"""Records that leave with their integration leave through the change feed too.

Deleting an integration deletes its records by cascade (``Record.integration`` is a foreign
key): no write path runs, so without this a tenant application following the change feed
would keep them forever. Before the cascade (Django's ``pre_delete``, in the deleting
transaction), each live record of the integration gets a ``deleted`` history row — set-based,
one statement per thousand records — so the feed serves a tombstone for each, in the same
commit as the deletion (rolled back with it if the deletion fails).

A tenant deleted as a whole needs no such rows: its API keys, and so its readers, go with it.

Records in a store outside the database (Cosmos DB) are no foreign keys of anything: the
deletion queues :func:`purge` after it commits, which pages through the integration's
documents and, per page, first commits their ``deleted`` history rows and then deletes the
documents. Run again (a retry, a worker killed midway) it writes no row twice — a record
that already has its deletion row is only removed — so the feed reports each record once.
"""

from __future__ import annotations

from types import SimpleNamespace

CHUNK = 1000


SOURCE = "service"
PURGE_TASK = "syncing.tasks.purge_integration_records"


def _source_id(integration_id) -> str:
    return f"integration-deleted:{integration_id}"


def integration_deleting(sender, instance, **kwargs) -> None:
    from castiel.queue import enqueue
    from syncing.models import Record
    from syncing.records import history
    from syncing.records.stores import get_store

    if not get_store().joins_transaction:
        # After the commit: the records outlive the row in the other store.
        enqueue(PURGE_TASK, str(instance.tenant_id), str(instance.pk), kind="maintenance")
        return

    live = (
        Record.objects.filter(integration_id=instance.pk, deleted_at__isnull=True)
        .order_by("id")
        .values_list("id", "tenant_id", "entity_type", "external_id", "version")
    )
    chunk: list[SimpleNamespace] = []
    for record_id, tenant_id, entity_type, external_id, version in live.iterator(CHUNK):
        chunk.append(
            SimpleNamespace(
                id=record_id,
                tenant_id=tenant_id,
                integration_id=instance.pk,
                entity_type=entity_type,
                external_id=external_id,
                version=(version or 0) + 1,
            )
        )
        if len(chunk) == CHUNK:
            history.removed(chunk, source=SOURCE, source_id=_source_id(instance.pk))
            chunk = []
    if chunk:
        history.removed(chunk, source=SOURCE, source_id=_source_id(instance.pk))


def purge(tenant_id, integration_id) -> int:
    """Remove a deleted integration's records from a store outside the database, reporting
    each live one to the change feed once. Returns how many documents were removed."""
    from django.db import transaction

    from syncing.models import RecordChange
    from syncing.records import history
    from syncing.records.stores import get_store

    store = get_store()
    removed = 0
    while True:
        page, _next = store.list_page(
            tenant_id, integration_id=integration_id, include_deleted=True, page_size=CHUNK
        )
        if not page:
            return removed
        live = [r for r in page if r.deleted_at is None]
        reported = set(
            RecordChange.objects.filter(
                record_id__in=[r.id for r in live],
                action=RecordChange.Action.DELETED,
                source_id=_source_id(integration_id),
            ).values_list("record_id", flat=True)
        )
        owed = [r.copy(version=r.version + 1) for r in live if r.id not in reported]
        if owed:
            with transaction.atomic():
                history.removed(owed, source=SOURCE, source_id=_source_id(integration_id))
        for record in page:  # the history is committed: now the documents may go
            store.remove(record.tenant_id, record.id)
            removed += 1
