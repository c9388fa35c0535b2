"""Sync-task actions: run (202, 409 when the integration cannot run), the deprecated run-now
alias, and the dry run, which previews a real fetch without writing anything."""

from __future__ import annotations

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.inbound import scheduler
from syncing.models import Conflict, OutboundChange, Record, SyncRun, SyncTask
from syncing.outbound import local_changes
from tests.syncing.helpers import make_integration, make_task, run_once, sandbox_integration

pytestmark = [pytest.mark.embedded]


@pytest.mark.django_db
def test_run_queues_and_the_deprecated_run_now_still_works(api, tenant, enqueued):
    task = make_task(make_integration(tenant, "http://127.0.0.1:9/"))
    response = api.post(f"/api/v1/sync-tasks/{task.pk}/run/")
    assert response.status_code == 202, response.json()
    assert response.json()["queued"] is True
    assert response.json()["task"]["status"] == "queued"
    assert [m[0] for m in enqueued.drain()] == [scheduler.WORKER]

    again = api.post(f"/api/v1/sync-tasks/{task.pk}/run-now/")
    assert again.status_code == 202 and again.json()["queued"] is False, "busy: flagged"
    assert SyncTask.objects.get(pk=task.pk).run_requested


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "needle"),
    [({"enabled": False}, "disabled"), ({"status": "reauth_required"}, "reauth_required")],
)
def test_run_of_a_task_whose_integration_cannot_run_is_409(api, tenant, enqueued, change, needle):
    integration = make_integration(tenant, "http://127.0.0.1:9/")
    task = make_task(integration)
    for name, value in change.items():
        setattr(integration, name, value)
    integration.save()
    for verb in ("run", "dry-run"):
        response = api.post(f"/api/v1/sync-tasks/{task.pk}/{verb}/")
        assert response.status_code == 409, response.json()
        assert response.json()["code"] == "integration_not_operational"
        assert needle in response.json()["message"]
    assert enqueued.drain() == []


def actions(body) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in body["items"]:
        found.setdefault(item["action"], []).append(item["external_id"])
    return found


@pytest.mark.django_db(transaction=True)
def test_dry_run_shows_what_a_run_would_do_and_writes_nothing(
    api, tenant, sandbox, enqueued, pushes
):
    account = sandbox.account()
    sandbox.seed(account, 5)
    integration = sandbox_integration(
        tenant, sandbox.url, account.slug, pagination={"style": "cursor", "page_size": 2}
    )
    task = make_task(integration, conflict_strategy="manual")
    objects = list(SandboxObject.objects.filter(account=account).order_by("id"))

    first = api.post(f"/api/v1/sync-tasks/{task.pk}/dry-run/", {"pages": 2}, format="json")
    assert first.status_code == 200, first.json()
    body = first.json()
    assert (body["pages"], body["more_pages"], body["counts"]["fetched"]) == (2, True, 4)
    assert actions(body) == {"created": [str(o.pk) for o in objects[:4]]}
    assert body["items"][0]["after"]["email"] == objects[0].data["email"]
    assert body["counts"]["created"] == 4
    assert not Record.objects.exists() and not SyncRun.objects.exists()
    task.refresh_from_db()
    assert task.checkpoint == {} and task.state == {}

    # After a real run: a remote edit shows as an update of that field; a remote edit of a
    # locally edited record as a conflict (manual strategy) — and still nothing is written.
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    sandbox_services.object_update(obj=objects[0], data={"company": "Renamed"})
    local = Record.objects.get(external_id=str(objects[1].pk))
    local_changes.record_update(tenant_id=tenant.id, record_id=local.pk, data={"company": "Mine"})
    sandbox_services.object_update(obj=objects[1], data={"company": "Theirs"})
    records_before = list(Record.objects.values_list("id", "version", "data"))
    changes_before = OutboundChange.objects.count()

    body = api.post(f"/api/v1/sync-tasks/{task.pk}/dry-run/", {"pages": 3}, format="json").json()
    assert actions(body) == {"updated": [str(objects[0].pk)], "conflict": [str(objects[1].pk)]}
    updated = next(i for i in body["items"] if i["action"] == "updated")
    assert updated["fields"] == ["company", "updated_at"]
    assert updated["before"]["company"] != "Renamed"
    assert updated["after"]["company"] == "Renamed"
    assert not Conflict.objects.exists(), "the manual-review conflict was rolled back"
    assert list(Record.objects.values_list("id", "version", "data")) == records_before
    assert OutboundChange.objects.count() == changes_before
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_dry_run_reports_a_misconfigured_task_and_an_unreachable_provider(api, tenant):
    task = make_task(make_integration(tenant, "http://127.0.0.1:9/"))
    SyncTask.objects.filter(pk=task.pk).update(checkpoint={"cursor": "not an object"})
    response = api.post(f"/api/v1/sync-tasks/{task.pk}/dry-run/")
    assert response.status_code == 400 and response.json()["code"] == "invalid_cursor"

    SyncTask.objects.filter(pk=task.pk).update(checkpoint={})
    response = api.post(f"/api/v1/sync-tasks/{task.pk}/dry-run/")
    assert response.status_code == 502, response.json()
    assert response.json()["code"] == "provider_error"
    assert response.json()["details"]["error_code"]

    response = api.post(f"/api/v1/sync-tasks/{task.pk}/dry-run/", {"pages": 99}, format="json")
    assert response.status_code == 400 and "pages" in response.json()["details"]
