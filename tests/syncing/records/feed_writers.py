"""Child-process side of the change-feed race test: one writer doing what Castiel's writers do
to one tenant's records — pull pages, webhook-style one-record upserts, API edits, deletes,
creates and batch writes (``batch_changes``, atomic or per item) — in transactions of random
length, some rolled back.

Runs in a fresh interpreter (multiprocessing "spawn"), so it sets Django up itself against the
test database named in ``db_url``. Every write carries a token naming its transaction; the
tokens of transactions that did not commit are reported, so the test can check that nothing
it saw came from them.
"""

from __future__ import annotations

import os
import random
import time


class RolledBack(Exception):
    pass


def write(
    *, db_url, seed, writer, task_id, external_ids, seconds, min_committed, ready, results
) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "castiel.settings")
    import django

    django.setup()

    from django.db import DatabaseError, connection, transaction

    from syncing.inbound.dedup import strategy_for
    from syncing.inbound.pipeline import PagePipeline
    from syncing.models import SyncTask
    from syncing.outbound import batch_changes, local_changes
    from syncing.records import outbox
    from syncing.records.hashing import record_id
    from syncing.records.stores import get_store
    from syncing.records.stores.base import StaleRecordError
    from tests.syncing.pipeline_support import RecordAccessors

    outbox.request_dispatch = lambda: None  # no push workers here: the outbox rows suffice
    rng = random.Random(seed * 100 + writer)
    task = SyncTask.objects.select_related("integration").get(pk=task_id)
    store, accessors = get_store(), RecordAccessors()
    from integrations.adapters.mapping import FieldMapping

    def pipeline(source):
        return PagePipeline(
            task=task,
            adapter=accessors,
            mapping=FieldMapping(task.field_mapping),
            strategy=strategy_for(
                task.dedup_strategy, task.dedup_config, identity_fields=accessors.identity_fields
            ),
            store=store,
            generation=None,
            source=source,
        )

    def rid(external_id):
        return record_id(task.tenant_id, task.integration_id, task.entity_type, external_id)

    def remote(external_id, token):
        return {
            "id": external_id,
            "v": rng.randrange(1_000_000),
            "tx": token,
            "deleted": rng.random() < 0.08,
        }

    def operation(token: str) -> None:
        kind = rng.choices(
            ["pull", "webhook", "edit", "delete", "create", "batch"], weights=[3, 3, 4, 1, 1, 2]
        )[0]
        if kind == "pull":
            ids = rng.sample(external_ids, rng.randint(2, 6))
            page = [remote(e, token) for e in ids]
            with transaction.atomic(), store.atomic():
                pipeline(("run", token)).apply(page)
        elif kind == "webhook":
            with transaction.atomic(), store.atomic():
                pipeline(("webhook", token)).apply([remote(rng.choice(external_ids), token)])
        elif kind == "edit":
            local_changes.record_update(
                tenant_id=task.tenant_id,
                record_id=rid(rng.choice(external_ids)),
                data={"v": rng.randrange(1_000_000), "tx": token},
                origin="api",
            )
        elif kind == "delete":
            local_changes.record_delete(
                tenant_id=task.tenant_id, record_id=rid(rng.choice(external_ids)), origin="api"
            )
        elif kind == "batch":
            batch(token)
        else:
            local_changes.record_create(
                integration=task.integration,
                entity_type=task.entity_type,
                data={"v": 0, "tx": token},
                origin="api",
            )

    def batch(token: str) -> None:
        """Updates of a few records, maybe a delete and a create, in one batch write."""
        chosen = rng.sample(external_ids, rng.randint(3, 9))
        Item = batch_changes.BatchItem
        items = [
            Item("update", record_id=rid(e), data={"v": rng.randrange(1_000_000), "tx": token})
            for e in chosen[:-1]
        ]
        if rng.random() < 0.3:
            items.append(Item("delete", record_id=rid(chosen[-1])))
        if rng.random() < 0.3:
            items.append(
                Item(
                    "create",
                    integration=task.integration,
                    entity_type=task.entity_type,
                    data={"v": 0, "tx": token},
                )
            )
        batch_changes.records_write_batch(
            tenant_id=task.tenant_id, items=items, atomic=rng.random() < 0.5, origin="api"
        )

    rolled_back: list[str] = []
    committed = attempts = 0
    ready.wait(timeout=120)
    stop_at = time.monotonic() + seconds
    n = 0
    # For ``seconds``, and on a slow machine until ``min_committed`` transactions committed: the
    # scenario's volume must not depend on the machine's speed (bounded by the attempts).
    while time.monotonic() < stop_at or (
        committed < min_committed and attempts < 50 * min_committed
    ):
        n += 1
        token = f"w{writer}-{n}"
        attempts += 1
        try:
            with transaction.atomic():
                for _ in range(rng.randint(1, 4)):
                    try:
                        operation(token)
                    except (local_changes.RecordChangeError, StaleRecordError):
                        pass  # a record another writer deleted or changed meanwhile
                    # Held open for a while: other transactions commit meanwhile.
                    time.sleep(rng.choice((0, 0, 0, 0.002, 0.01, 0.04)))
                if rng.random() < 0.2:
                    raise RolledBack
            committed += 1
        except RolledBack:
            rolled_back.append(token)
        except DatabaseError:  # a deadlock between two pages, a lock timeout: rolled back
            rolled_back.append(token)
    connection.close()
    results.put({"writer": writer, "rolled_back": rolled_back, "committed": committed})
