"""A local change and its outbox row stand or fall together, in either record store.

With Cosmos DB (cosmosdb-server) the record cannot join the database transaction: when
anything fails after the record was written — the history insert, the commit itself — the
record is put back as it was, so no edit is left without the outbound change that pushes it.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from syncing.models import Conflict, OutboundChange, RecordChange
from syncing.outbound import local_changes
from syncing.records import history
from syncing.records.stores.base import Scope
from syncing.services import conflict_resolve
from tests.factories import IntegrationFactory
from tests.syncing.helpers import make_task
from tests.syncing.records.test_stores import make

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


class Boom(Exception):
    pass


@pytest.fixture
def stored(record_store, tenant):
    integration = IntegrationFactory(tenant=tenant)
    scope = Scope(tenant.id, integration.id, "contacts")
    record = make(scope, "a", name="Ada")
    record_store.write(scope, [record], [])
    return integration, record_store.get(tenant.id, record.id)


def fail_history(monkeypatch):
    def boom(*args, **kwargs):
        raise Boom("the history insert fails after the record was written")

    monkeypatch.setattr(history, "local_change", boom)


def fail_commit(monkeypatch):
    def refuse():
        raise OperationalError("the database went away at commit")

    monkeypatch.setattr(connection, "commit", refuse)


@pytest.mark.parametrize("failure", [fail_history, fail_commit], ids=["history", "commit"])
def test_a_failed_update_or_delete_leaves_the_record_as_it_was(
    stored, record_store, monkeypatch, failure
):
    _integration, before = stored
    for change in (
        lambda: local_changes.record_update(
            tenant_id=before.tenant_id, record_id=before.id, data={"name": "Ada L."}
        ),
        lambda: local_changes.record_delete(tenant_id=before.tenant_id, record_id=before.id),
    ):
        with monkeypatch.context() as patch:
            failure(patch)
            with pytest.raises((Boom, OperationalError)):
                change()
        after = record_store.get(before.tenant_id, before.id)
        assert (after.data, after.deleted_at, after.version) == (
            before.data,
            None,
            before.version,
        )
        assert not OutboundChange.objects.exists()
        assert not RecordChange.objects.exists()
    # And the record is still editable (the undo left a consistent record behind).
    done = local_changes.record_update(
        tenant_id=before.tenant_id, record_id=before.id, data={"n": 1}
    )
    assert done.change is not None and record_store.get(before.tenant_id, before.id).data["n"]


def test_a_failed_create_leaves_no_record(record_store, tenant, monkeypatch):
    integration = IntegrationFactory(tenant=tenant)
    with monkeypatch.context() as patch, pytest.raises(OperationalError):
        fail_commit(patch)
        local_changes.record_create(integration=integration, entity_type="contacts", data={"n": 1})
    scope = Scope(tenant.id, integration.id, "contacts")
    assert list(record_store.iter_scope(scope, include_deleted=True)) == []
    assert not OutboundChange.objects.exists()


def test_a_failed_conflict_resolution_leaves_the_record_and_the_conflict_open(
    stored, record_store, monkeypatch
):
    integration, before = stored
    conflict = Conflict.objects.create(
        tenant_id=before.tenant_id,
        task=make_task(integration, "contacts"),
        entity_type="contacts",
        record_id=before.id,
        external_id="a",
        local_data=before.data,
        remote_data={"id": "a", "name": "Ada Remote"},
        base_data=before.data,
        fields=["name"],
        remote_updated_at=timezone.now(),
    )
    with monkeypatch.context() as patch, pytest.raises(OperationalError):
        fail_commit(patch)
        conflict_resolve(conflict=conflict, resolution="remote", by="ops")
    assert record_store.get(before.tenant_id, before.id).data == before.data
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.OPEN
    conflict_resolve(conflict=conflict, resolution="remote", by="ops")
    assert record_store.get(before.tenant_id, before.id).data["name"] == "Ada Remote"
