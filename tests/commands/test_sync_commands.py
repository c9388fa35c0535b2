"""sync_run, deadletters_replay and outbox_status, against the sandbox over HTTP."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from sandbox.models import SandboxObject
from syncing.inbound import scheduler
from syncing.models import DeadLetter, OutboundChange, Record, SyncRun
from syncing.outbound import local_changes
from tests.syncing.factories import make_dead_letter
from tests.syncing.helpers import make_integration, make_task, sandbox_integration
from tests.syncing.outbound_support import SANDBOX_PUSH, push_all

pytestmark = [pytest.mark.embedded]


@pytest.mark.django_db(transaction=True)
def test_sync_run_inline_runs_the_task_and_prints_the_summary(tenant, sandbox, command, pushes):
    account = sandbox.account()
    sandbox.seed(account, 7)
    integration = sandbox_integration(tenant, sandbox.url, account.slug, name="CRM")
    task = make_task(integration)

    ran = command("sync_run", str(task.pk), "--inline")
    run = SyncRun.objects.get(task=task)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert f"run {run.pk} succeeded" in ran.out
    assert "7 fetched, 7 created, 0 updated" in ran.out
    assert Record.objects.filter(integration=integration).count() == 7
    assert "syncing CRM: contacts: 7 records" in ran.err  # the progress line (not a TTY)

    # By integration name and entity type: the second run finds everything unchanged.
    ran = command("sync_run", "--integration", "CRM", "--entity", "contacts", "--inline")
    assert "0 created, 0 updated" in ran.out and SyncRun.objects.filter(task=task).count() == 2


@pytest.mark.django_db(transaction=True)
def test_sync_run_failure_and_bad_arguments_are_one_line_errors(tenant, sandbox, fails):
    account = sandbox.account()
    integration = sandbox_integration(tenant, sandbox.url, account.slug, name="CRM")
    task = make_task(integration)
    sandbox.faults(account, error_rate=1.0)  # every request answers 503
    with override_settings(CASTIEL_SYNC_MAX_RETRIES=0):
        message = fails("sync_run", str(task.pk), "--inline")
    assert message.startswith("run ") and "failed: http_503" in message

    assert fails("sync_run") == "give a task id, or --integration and --entity"
    assert "is not a sync task id" in fails("sync_run", "nope")
    assert fails("sync_run", "--integration", "CRM", "--entity", "deals") == (
        "integration 'CRM' has no sync task for 'deals'"
    )
    assert fails("sync_run", "--integration", "Nope", "--entity", "contacts") == (
        "no integration 'Nope'"
    )
    integration.enabled = False
    integration.save()
    assert fails("sync_run", str(task.pk)) == "integration 'CRM' is disabled"


@pytest.mark.django_db(transaction=True)
def test_sync_run_waits_for_a_worker_and_times_out_clearly(tenant, fails, enqueued):
    task = make_task(make_integration(tenant, "http://127.0.0.1:9/"))
    message = fails("sync_run", str(task.pk), "--timeout", "0.2")
    assert message.startswith(f"no finished run of sync task {task.pk} after 0.2 s")
    assert [m[0] for m in enqueued.drain()] == [scheduler.WORKER], "it was queued"


@pytest.mark.django_db(transaction=True)
def test_deadletters_replay_by_filter_with_dry_run_then_for_real(
    tenant, other_tenant, sandbox, command, fails, pushes, enqueued
):
    from tests.syncing.helpers import run_once

    account = sandbox.account()
    sandbox.seed(account, 2)
    integration = sandbox_integration(tenant, sandbox.url, account.slug, name="CRM", **SANDBOX_PUSH)
    task = make_task(integration)
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    records = list(Record.objects.filter(integration=integration).order_by("external_id"))
    for record in records:
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.pk, data={"email": "broken"}
        )
    assert push_all(pushes) == {"dead": 2}
    theirs = make_dead_letter(other_tenant)

    listed = command("deadletters_replay", "--tenant", tenant.slug, "--dry-run")
    assert "would replay 2 dead letters (dry run)" in listed.out
    assert listed.out.count("http_422") == 2
    assert DeadLetter.objects.filter(status="open").count() == 3, "a dry run changes nothing"

    for record in records:  # fix the cause: the next pushes carry valid addresses
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.pk, data={"email": f"{record.pk}@example.com"}
        )
    ran = command("deadletters_replay", "--tenant", tenant.slug, "--integration", "CRM")
    assert ran.out.strip() == "replayed 2 dead letters"
    assert "replaying [" in ran.err and "2/2 dead letters" in ran.err
    assert push_all(pushes) == {"succeeded": 4}
    emails = {o.data["email"] for o in SandboxObject.objects.filter(account=account)}
    assert emails == {f"{r.pk}@example.com" for r in records}
    theirs.refresh_from_db()
    assert theirs.status == "open", "another tenant's dead letter was not touched"

    assert "already replayed or discarded" in fails(
        "deadletters_replay",
        str(records[0].pk).replace(
            str(records[0].pk), str(DeadLetter.objects.filter(tenant=tenant).first().pk)
        ),
    )
    assert fails("deadletters_replay") == (
        "give dead letter ids, a filter (--tenant, --integration …) or --all"
    )
    ran = command("deadletters_replay", str(theirs.pk), "--discard")
    assert ran.out.strip() == "discarded 1 dead letters"
    assert OutboundChange.objects.get(pk=theirs.change_id).status == "discarded"


@pytest.mark.django_db
def test_outbox_status_counts_by_status_and_integration(tenant, command):
    letter = make_dead_letter(tenant)
    record_integration = make_integration(tenant, "http://127.0.0.1:9/", name="Second")
    local_changes.record_create(
        integration=record_integration, entity_type="contacts", data={"a": 1}
    )

    ran = command("outbox_status", "--by-integration")
    assert f"{letter.integration.name}: dead 1" in ran.out
    assert "Second: pending 1" in ran.out
    assert "open dead letters: 1" in ran.out

    report = json.loads(command("outbox_status", "--json", "--tenant", tenant.slug).out)
    (row,) = report["rows"]
    assert row["statuses"] == {"dead": 1, "pending": 1}
    assert row["open_dead_letters"] == 1 and row["oldest_waiting_seconds"] >= 0
