"""Push to a real json-server (1.0 beta and 0.17): create, update (PATCH of the changed fields
only), delete land remotely; the remote id and version are stored; the next pull sees no
remote change."""

from __future__ import annotations

import pytest
import requests

from syncing.models import OutboundChange, SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from tests.syncing.helpers import make_integration, make_task, records_of, run_once
from tests.syncing.inbound.test_json_server_sync import CONFIGS, contacts
from tests.syncing.outbound_support import changes_of, push_all

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.node]


def remote(server, path=""):
    response = requests.get(f"{server.url}/contacts{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def pulled(tenant, json_server, enqueued, version, n=5, **task_fields):
    server = json_server(version, {"contacts": contacts(n)})
    task = make_task(make_integration(tenant, server.url, **CONFIGS[version]), **task_fields)
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return server, task


def record_of(task, external_id):
    return next(
        r
        for r in get_store().iter_scope(_scope(task), include_deleted=True)
        if r.external_id == external_id
    )


def _scope(task):
    from syncing.records.stores.base import Scope

    return Scope(task.tenant_id, task.integration_id, task.entity_type)


@pytest.mark.parametrize("version", ["1", "017"])
def test_update_patches_only_the_changed_fields(version, tenant, json_server, enqueued, pushes):
    server, task = pulled(tenant, json_server, enqueued, version)
    record = record_of(task, "2")
    # Someone changes another field remotely after our pull: a PATCH of only our field keeps it.
    requests.patch(
        f"{server.url}/contacts/2", json={"email": "theirs@example.com"}, timeout=5
    ).raise_for_status()

    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "Renamed locally"}
    ).change
    assert change.operation == "update" and change.fields == ["name"]
    assert push_all(pushes) == {"succeeded": 1}

    after = remote(server, "/2")
    assert after["name"] == "Renamed locally"
    assert after["email"] == "theirs@example.com", "a full PUT would have overwritten it"
    change.refresh_from_db()
    assert change.status == "succeeded" and change.remote_id == "2"
    assert change.attempts == 1 and change.duration_ms is not None and change.execution_id == ""
    stored = record_of(task, "2")
    assert stored.last_pushed_hash and stored.base_data == after
    assert stored.remote_version == after["updatedAt"]


@pytest.mark.parametrize("version", ["1", "017"])
def test_create_then_delete_land_remotely_and_remote_ids_are_kept(
    version, tenant, json_server, enqueued, pushes
):
    server, task = pulled(tenant, json_server, enqueued, version, n=2)
    created = local_changes.record_create(
        integration=task.integration,
        entity_type="contacts",
        data={"name": "Made here", "email": "here@example.com"},
    )
    assert created.record.external_id.startswith(local_changes.PENDING_PREFIX)
    assert push_all(pushes) == {"succeeded": 1}

    theirs = [r for r in remote(server) if r.get("name") == "Made here"]
    assert len(theirs) == 1
    new_id = str(theirs[0]["id"])
    record = get_store().get(tenant.id, created.record.id)
    assert record.external_id == new_id, "the provider's id is stored on the same record"
    assert created.change.__class__.objects.get(pk=created.change.pk).remote_id == new_id

    local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
    assert push_all(pushes) == {"succeeded": 1}
    assert new_id not in {str(r["id"]) for r in remote(server)}
    assert [c.operation for c in changes_of(record.id)] == ["create", "delete"]


def test_the_next_pull_after_a_push_sees_no_remote_change(tenant, json_server, enqueued, pushes):
    """Echo: a full refresh reads every record back; ours is not a change, not a conflict."""
    server, task = pulled(
        tenant, json_server, enqueued, "1", mode="full", conflict_strategy="manual"
    )
    record = record_of(task, "3")
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"name": "Pushed"})
    created = local_changes.record_create(
        integration=task.integration, entity_type="contacts", data={"name": "New one"}
    )
    assert push_all(pushes) == {"succeeded": 2}

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.created, run.updated, run.conflicts, run.echoes) == (0, 0, 0, 2)
    assert records_of(task) == {str(r["id"]): r for r in remote(server)}
    again = run_once(task, enqueued)
    assert (again.created, again.updated, again.conflicts, again.echoes) == (0, 0, 0, 0)
    assert get_store().get(tenant.id, created.record.id).external_id in records_of(task)
    assert not OutboundChange.objects.exclude(status="succeeded").exists()


def test_versions_our_integration_user_made_are_not_remote_changes(tenant, json_server, enqueued):
    """The provider reports who changed a record: Castiel's own user's edits are echoes."""
    rows = [{**row, "updatedBy": "someone"} for row in contacts(3)]
    server = json_server("1", {"contacts": rows})
    config = {**CONFIGS["1"], "modified_by_field": "updatedBy", "self_user": "castiel-bot"}
    task = make_task(make_integration(tenant, server.url, **config), mode="full")
    assert run_once(task, enqueued).created == 3

    ours = {**rows[0], "name": "Written by us", "updatedBy": "castiel-bot"}
    theirs = {**rows[1], "name": "Written by them", "updatedBy": "someone"}
    for row in (ours, theirs):
        requests.put(f"{server.url}/contacts/{row['id']}", json=row, timeout=5).raise_for_status()

    run = run_once(task, enqueued)
    assert (run.updated, run.echoes, run.conflicts) == (1, 1, 0)
    assert records_of(task) == {r["id"]: r for r in remote(server)}
