"""The sync API: tasks (CRUD, run now, pause/resume), runs, records, conflicts."""

from __future__ import annotations

import pytest

from syncing.models import Conflict, SyncTask
from tests.factories import IntegrationFactory
from tests.syncing.factories import make_conflict, make_record, make_sync_run

pytestmark = pytest.mark.django_db


def create_task(api, integration, **fields):
    body = {"integration": str(integration.pk), "entity_type": "contacts", **fields}
    return api.post("/api/v1/sync-tasks/", body, format="json")


def test_create_read_update_and_delete_a_task(api, tenant):
    integration = IntegrationFactory(tenant=tenant)
    response = create_task(
        api,
        integration,
        mode="full",
        priority=5,
        dedup_strategy="normalized_match",
        dedup_config={"rules": [{"rule": "email", "field": "email"}]},
        conflict_strategy="last_write_wins",
        conflict_config={"skew_seconds": 10},
        field_mapping={"email": {"path": "properties.email", "transform": "email"}},
    )
    assert response.status_code == 201, response.json()
    task = SyncTask.objects.get(pk=response.json()["id"])
    assert task.tenant == tenant and task.mode == "full"
    url = f"/api/v1/sync-tasks/{task.pk}/"
    assert api.patch(url, {"cron": "*/15 * * * *"}, format="json").status_code == 200
    assert api.get(url).json()["cron"] == "*/15 * * * *"
    assert api.delete(url).status_code == 204


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"field_mapping": {"x": {"path": "a", "transform": "rot13"}}}, "field_mapping"),
        ({"dedup_strategy": "composite_key", "dedup_config": {}}, "dedup_config"),
        (
            {"conflict_strategy": "last_write_wins", "conflict_config": {"tie": "x"}},
            "conflict_config",
        ),
        ({"cron": "every tuesday"}, "cron"),
        ({"interval_seconds": 5}, "interval_seconds"),
    ],
)
def test_invalid_configuration_is_a_400_with_the_field(api, tenant, fields, field):
    response = create_task(api, IntegrationFactory(tenant=tenant), **fields)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["details"]
    assert not SyncTask.objects.exists()


def test_another_tenants_integration_cannot_be_used(api, other_tenant):
    response = create_task(api, IntegrationFactory(tenant=other_tenant))
    assert response.status_code == 400 and "integration" in response.json()["details"]


def test_run_now_pause_and_resume(api, tenant, enqueued):
    task_id = create_task(api, IntegrationFactory(tenant=tenant)).json()["id"]
    response = api.post(f"/api/v1/sync-tasks/{task_id}/run-now/")
    assert response.status_code == 202
    assert response.json()["queued"] is True and response.json()["task"]["status"] == "queued"
    [(_path, (token, trigger, _slot, _slots), _kind)] = enqueued.messages
    assert SyncTask.objects.get(pk=task_id).lease_owner == token and trigger == "manual"
    assert api.post(f"/api/v1/sync-tasks/{task_id}/run-now/").json()["queued"] is False
    paused = api.post(f"/api/v1/sync-tasks/{task_id}/pause/").json()
    assert paused["enabled"] is False
    resumed = api.post(f"/api/v1/sync-tasks/{task_id}/resume/").json()
    assert resumed["enabled"] is True


def test_runs_and_records_are_readable(api, tenant):
    run = make_sync_run(tenant)
    record = make_record(tenant)
    body = api.get(f"/api/v1/sync-runs/?task={run.task_id}").json()
    assert [r["id"] for r in body["results"]] == [str(run.id)]
    assert api.get(f"/api/v1/records/{record.id}/").json()["data"] == record.data
    assert api.post("/api/v1/sync-runs/", {}, format="json").status_code == 405


def test_resolve_a_conflict(api, tenant):
    conflict = make_conflict(tenant)
    url = f"/api/v1/conflicts/{conflict.pk}/resolve/"
    bad = api.post(url, {"resolution": "merged"}, format="json")
    assert bad.status_code == 409 and bad.json()["code"] == "conflict_not_resolvable"
    response = api.post(url, {"resolution": "merged", "data": {"name": "both"}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "resolved"
    conflict.refresh_from_db()
    assert conflict.resolution == Conflict.Resolution.MERGED
    assert api.get(f"/api/v1/records/{conflict.record_id}/").json()["data"] == {"name": "both"}
    again = api.post(url, {"resolution": "local"}, format="json")
    assert again.status_code == 409
