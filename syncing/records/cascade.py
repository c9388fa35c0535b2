"""Records that leave with their integration leave through the change feed too.

Deleting an integration deletes its records by cascade (``Record.integration`` is a foreign
key): no write path runs, so without this a tenant application following the change feed
would keep them forever. Before the cascade (Django's ``pre_delete``, in the deleting
transaction), each live record of the integration gets a ``deleted`` history row — set-based,
one statement per thousand records — so the feed serves a tombstone for each, in the same
commit as the deletion (rolled back with it if the deletion fails).

A tenant deleted as a whole needs no such rows: its API keys, and so its readers, go with it.
Records in the Cosmos DB store are not foreign keys of the integration: they are left where
they are and are not reported here (docs/sync.md, "Change feed").
"""

from __future__ import annotations

from types import SimpleNamespace

CHUNK = 1000


def integration_deleting(sender, instance, **kwargs) -> None:
    from syncing.models import Record
    from syncing.records import history

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
            history.removed(chunk, source="service", source_id=f"integration-deleted:{instance.pk}")
            chunk = []
    if chunk:
        history.removed(chunk, source="service", source_id=f"integration-deleted:{instance.pk}")
