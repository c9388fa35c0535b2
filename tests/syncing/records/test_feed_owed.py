"""A pull page whose transaction fails after its records were written still reaches the
change feed, exactly once, in either record store. With the ORM store the records roll back
with it; with Cosmos DB (cosmosdb-server) they stay written and carry the history row they are
owed, which the replayed page writes (syncing/records/history_repair.py)."""

from __future__ import annotations

import pytest
from django.db import transaction

from syncing.records import history
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.syncing.records.test_feed import follow

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


class Boom(Exception):
    pass


def failing_after_the_store_write(task, records, store, monkeypatch):
    """The page's records are written, then its relational transaction fails."""
    with monkeypatch.context() as patch:
        patch.setattr(history, "page_written", lambda *a, **k: (_ for _ in ()).throw(Boom()))
        with pytest.raises(Boom), transaction.atomic():
            apply_page(task, records, store=store)


def test_a_failed_page_replayed_reaches_the_feed_once(record_store, tenant, api, monkeypatch):
    task = task_with(tenant)
    page = [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Bob"}]
    failing_after_the_store_write(task, page, record_store, monkeypatch)
    apply_page(task, page, store=record_store)  # the replay from the old checkpoint

    changes, cursor = follow(api)
    assert sorted((c["external_id"], c["action"], c["version"]) for c in changes) == [
        ("1", "created", 1),
        ("2", "created", 1),
    ]
    # Later pages meet the records again: nothing is owed twice.
    apply_page(task, page, store=record_store)
    assert follow(api, cursor)[0] == []


def test_a_failed_update_replayed_keeps_its_fields_and_its_order(
    record_store, tenant, api, monkeypatch
):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada", "city": "Paris"}], store=record_store)
    _changes, cursor = follow(api)
    failing_after_the_store_write(
        task, [{"id": "1", "name": "Ada L.", "city": "Paris"}], record_store, monkeypatch
    )
    # The next sync brings a further change: the owed one comes first, then this one.
    apply_page(task, [{"id": "1", "name": "Ada L.", "city": "London"}], store=record_store)

    changes, _ = follow(api, cursor)
    if record_store.joins_transaction:  # the failed write rolled back: one change
        assert [(c["action"], c["fields"], c["version"]) for c in changes] == [
            ("updated", ["city", "name"], 2)
        ]
    else:
        assert [(c["action"], c["fields"], c["version"]) for c in changes] == [
            ("updated", ["name"], 2),
            ("updated", ["city"], 3),
        ]
    assert stored(task, store=record_store)["1"].data["city"] == "London"


def test_records_deleted_with_their_integration_leave_the_store_and_the_feed_once(
    record_store, tenant, api, run_tasks_inline
):
    from syncing.records import cascade

    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Bob"}], store=record_store)
    _changes, cursor = follow(api)

    task.integration.delete()  # Cosmos DB: the purge runs after the commit (inline here)

    assert stored(task, store=record_store, include_deleted=True) == {}
    changes, cursor = follow(api, cursor)
    assert sorted((c["external_id"], c["action"], c["version"]) for c in changes) == [
        ("1", "deleted", 2),
        ("2", "deleted", 2),
    ]
    if not record_store.joins_transaction:
        # A purge run again (a retry after a worker died midway) reports nothing twice.
        apply_page(task, [{"id": "3", "name": "Cy"}], store=record_store)  # a straggler
        _changes, cursor = follow(api, cursor)
        assert cascade.purge(tenant.id, task.integration_id) == 1
        assert [c["action"] for c in follow(api, cursor)[0]] == ["deleted"]
        assert cascade.purge(tenant.id, task.integration_id) == 0
