"""Dry-run preview and reset cursor: the next run's decisions, shown without writing; and a
reset that makes the next run read everything again."""

from __future__ import annotations

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.inbound.preview import sync_task_preview
from syncing.models import Conflict, OutboundChange, Record, RecordChange, SyncRun, SyncTask
from syncing.outbound import local_changes
from syncing.services import sync_task_reset_cursor
from tests.syncing.helpers import make_task, records_of, run_once, sandbox_integration

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def synced_task(tenant, sandbox, enqueued, n=25, **fields):
    account = sandbox.account()
    sandbox.seed(account, n)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug), **fields)
    return account, task


@pytest.mark.embedded
def test_the_first_pages_of_a_new_task_would_create_and_nothing_is_written(
    tenant, sandbox, enqueued, record_store
):
    account, task = synced_task(tenant, sandbox, enqueued)
    preview = sync_task_preview(task=task)
    assert preview.ok, preview.error
    assert (preview.pages, preview.more_pages, preview.counts["created"]) == (1, True, 20)
    assert {item.action for item in preview.items} == {"created"}
    first = SandboxObject.objects.filter(account=account).order_by("id").first()
    item = next(i for i in preview.items if i.external_id == str(first.pk))
    assert item.after == sandbox_services.serialize(first) and item.before is None

    both = sync_task_preview(task=task, max_pages=2)
    assert (both.pages, both.more_pages, both.counts["created"]) == (2, False, 25)

    assert records_of(task, store=record_store) == {}
    assert not RecordChange.objects.exists() and not SyncRun.objects.exists()
    task.refresh_from_db()
    assert (task.checkpoint, task.state, task.lease_owner, task.status) == ({}, {}, "", "idle")


def test_changes_since_the_last_run_are_shown_field_by_field(tenant, sandbox, enqueued):
    account, task = synced_task(tenant, sandbox, enqueued)
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    sandbox_services.object_update(obj=objs[0], data={"email": "moved@example.com"})
    sandbox_services.object_delete(obj=objs[1])
    sandbox_services.object_create(account=account, collection="contacts", data={"email": "n@x"})
    stored = records_of(task)
    history = RecordChange.objects.count()

    preview = sync_task_preview(task=task)
    assert preview.ok, preview.error
    by_action = {item.action: item for item in preview.items}
    assert set(by_action) == {"created", "updated", "deleted"}
    assert by_action["updated"].external_id == str(objs[0].pk)
    assert by_action["updated"].fields == ["email", "updated_at"]
    assert by_action["updated"].before["email"] != "moved@example.com"
    assert by_action["updated"].after["email"] == "moved@example.com"
    assert by_action["deleted"].external_id == str(objs[1].pk)
    assert preview.since, "an incremental run starts from the watermark"

    assert records_of(task) == stored and RecordChange.objects.count() == history


def test_a_conflict_is_previewed_but_not_opened(tenant, sandbox, enqueued):
    account, task = synced_task(tenant, sandbox, enqueued, n=3, conflict_strategy="manual")
    run_once(task, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = Record.objects.get(external_id=str(target.pk))
    local_changes.record_update(tenant_id=tenant.id, record_id=record.pk, data={"company": "Ours"})
    sandbox_services.object_update(obj=target, data={"company": "Theirs"})
    changes = OutboundChange.objects.count()

    preview = sync_task_preview(task=task)
    assert [(i.action, i.external_id) for i in preview.items] == [("conflict", str(target.pk))]
    assert "company" in preview.items[0].fields
    assert (preview.items[0].before["company"], preview.items[0].after["company"]) == (
        "Ours",
        "Theirs",
    )
    assert not Conflict.objects.exists() and OutboundChange.objects.count() == changes


@pytest.mark.embedded
def test_a_misconfigured_task_says_why(tenant, sandbox, enqueued):
    _account, task = synced_task(tenant, sandbox, enqueued, n=1)
    SyncTask.objects.filter(pk=task.pk).update(
        field_mapping={"n": {"path": "n", "transform": "rot13"}}
    )
    preview = sync_task_preview(task=task)
    assert not preview.ok and preview.error_code == "invalid_mapping"

    SyncTask.objects.filter(pk=task.pk).update(field_mapping={})
    task.integration.config["base_url"] = f"{sandbox.url}/sandbox/no-such-account/"
    task.integration.save()
    preview = sync_task_preview(task=task)
    assert not preview.ok and preview.error_code == "http_404", preview.error


@pytest.mark.embedded
def test_reset_cursor_makes_the_next_run_read_everything_again(tenant, sandbox, enqueued):
    _account, task = synced_task(tenant, sandbox, enqueued)
    assert run_once(task, enqueued).created == 25
    task.refresh_from_db()
    assert task.state["watermark"]

    assert sync_task_reset_cursor(task=task)
    assert "watermark" not in task.state and task.checkpoint == {}
    again = run_once(task, enqueued)
    assert (again.fetched, again.created, again.unchanged) == (25, 0, 25)

    SyncTask.objects.filter(pk=task.pk).update(lease_owner="worker-token")
    assert not sync_task_reset_cursor(task=task), "a running task keeps its cursor"
