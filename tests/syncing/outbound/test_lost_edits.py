"""A quick second edit is never lost to the provider's answer to the first one's push.

The push of a change reads the record when its batch starts, which can be well after the
change was claimed (the queue's delivery delay); an edit written in between is a change of
its own (a claimed change takes no merges) and is *in* the record the push reads, but the push
sends only its own change's fields. The provider's answer therefore holds the second edit's
fields at their old values: it must not become the record's data (it did, and the second
change then pushed the old values back — both `succeeded`, the edit gone).

Each test runs on both record stores (ORM, Cosmos DB) and, through scripts/test, on both
databases.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import connection

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject, SandboxRequest
from syncing.models import OutboundChange, RecordChange, SyncRun
from syncing.outbound import dispatch, local_changes, push
from syncing.outbound.local_changes import RecordChangeError
from syncing.records.stores import get_store
from tests.syncing.helpers import run_once
from tests.syncing.outbound_support import push_all, sandbox_push_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]


def _setup(tenant, sandbox, enqueued, n=4):
    account = sandbox.account()
    sandbox.seed(account, n)
    task = sandbox_push_task(tenant, sandbox, account)
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return account, task


def _records(task) -> dict:
    from syncing.records.stores.base import Scope

    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    return {r.external_id: r for r in get_store().iter_scope(scope, include_deleted=True)}


def _pushed_once(change: OutboundChange) -> bool:
    """The provider applied exactly one write under this change's idempotency key(s)."""
    keys = SandboxRequest.objects.filter(applied=True, idempotency_key__startswith=str(change.pk))
    return keys.count() == 1


def test_an_edit_written_after_its_predecessor_was_claimed_survives_that_push(
    record_store, tenant, sandbox, enqueued, pushes
):
    account, task = _setup(tenant, sandbox, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = _records(task)[str(target.pk)]
    first = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"company": "Renamed Co"}
    ).change
    dispatch.dispatch()  # claimed: waiting in the queue for a worker
    second = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"first_name": "Yvonne"}
    ).change
    assert second.pk != first.pk, "a claimed change takes no merges"

    assert push_all(pushes) == {"succeeded": 2}

    target.refresh_from_db()
    assert (target.data["company"], target.data["first_name"]) == ("Renamed Co", "Yvonne")
    mine = get_store().get(tenant.id, record.id)
    assert mine.data == sandbox_services.serialize(target), "local and provider agree"
    assert mine.base_data == mine.data and not mine.locally_modified
    for change in (first, second):
        change.refresh_from_db()
        assert change.status == OutboundChange.Status.SUCCEEDED
        assert _pushed_once(change)


def test_remote_wins_keeps_a_later_local_edit_of_another_field(
    record_store, tenant, sandbox, enqueued, pushes
):
    """The remote-wins policy takes the provider's copy for the fields it won — not for a
    field a later local change edited, which that change still pushes."""
    account, task = _setup(tenant, sandbox, enqueued)
    task.push_conflict_strategy = "remote_wins"
    task.save(update_fields=["push_conflict_strategy"])
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = _records(task)[str(target.pk)]
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"company": "Ours"})
    sandbox_services.object_update(obj=target, data={"company": "Theirs"})
    dispatch.dispatch()
    local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"first_name": "Yvonne"}
    )

    assert push_all(pushes) == {"skipped": 1, "succeeded": 1}

    target.refresh_from_db()
    assert (target.data["company"], target.data["first_name"]) == ("Theirs", "Yvonne")
    assert get_store().get(tenant.id, record.id).data == sandbox_services.serialize(target)
    # The provider's copy taken by "remote wins" is a change of the record (its history and
    # the change feed show it).
    taken = RecordChange.objects.filter(record_id=record.id, source="push", action="updated")
    assert any("company" in change.fields for change in taken)


SCENARIOS = ("other_field", "same_field", "replace", "delete")


def test_racing_edits_and_pushes_lose_nothing_and_push_each_change_once(
    record_store, tenant, sandbox, enqueued, pushes
):
    """Edits land at random moments while a worker pushes with a random queue delay and a
    slow provider; afterwards local records, the provider and the outbox agree."""
    account, task = _setup(tenant, sandbox, enqueued, n=len(SCENARIOS) * 2)
    rng = random.Random(20261206)
    targets = list(SandboxObject.objects.filter(account=account).order_by("id"))
    records = _records(task)
    expected: dict[str, dict | None] = {}
    for i, target in enumerate(targets):
        scenario = SCENARIOS[i % len(SCENARIOS)]
        sandbox.faults(account, latency_ms=rng.choice((0, 50, 150, 300)))
        record = records[str(target.pk)]
        _race(
            record,
            tenant,
            pushes,
            first={"company": f"Co {i}"},
            second=_second_edit(scenario, record.data, i),
            edit_delay=rng.uniform(0, 0.35),
            queue_delay=rng.uniform(0, 0.3),
        )
        expected[str(target.pk)] = _expected(scenario, record.data, i)
    sandbox.faults(account)
    push_all(pushes)

    assert not OutboundChange.objects.filter(status__in=OutboundChange.OPEN).exists()
    mine = _records(task)
    for target in targets:
        target.refresh_from_db()
        want = expected[str(target.pk)]
        local = mine[str(target.pk)]
        if want is None:
            assert target.deleted_at is not None and local.deleted_at is not None
            continue
        theirs = sandbox_services.serialize(target)
        assert {k: theirs[k] for k in want} == want, f"provider lost an edit of {target.pk}"
        assert local.data == theirs, f"local and provider disagree on {target.pk}"
    for change in OutboundChange.objects.filter(status=OutboundChange.Status.SUCCEEDED):
        assert _pushed_once(change), f"{change.operation} {change.pk} not pushed exactly once"


def _second_edit(scenario: str, data: dict, i: int) -> dict | None:
    if scenario == "other_field":
        return {"first_name": f"First {i}"}
    if scenario == "same_field":
        return {"company": f"Later Co {i}"}
    if scenario == "replace":
        return {"replace": {**data, "company": f"Co {i}", "last_name": f"Last {i}"}}
    return None  # delete


def _expected(scenario: str, data: dict, i: int) -> dict | None:
    if scenario == "other_field":
        return {"company": f"Co {i}", "first_name": f"First {i}"}
    if scenario == "same_field":
        return {"company": f"Later Co {i}"}
    if scenario == "replace":
        return {"company": f"Co {i}", "last_name": f"Last {i}", "email": data["email"]}
    return None


def _race(record, tenant, pushes, *, first, second, edit_delay, queue_delay) -> None:
    """Edit ``first``; a worker thread claims and (after ``queue_delay``) pushes it while
    ``second`` lands ``edit_delay`` later (retried on 409, as a client would)."""
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data=first)
    errors: list[BaseException] = []

    def worker():
        try:
            dispatch.dispatch()
            time.sleep(queue_delay)
            for token in pushes.drain():
                push.push_batch(token)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(edit_delay)
    for _ in range(50):
        try:
            if second is None:
                local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
            elif "replace" in second:
                local_changes.record_update(
                    tenant_id=tenant.id, record_id=record.id, data=second["replace"], replace=True
                )
            else:
                local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data=second)
            break
        except RecordChangeError as exc:
            assert exc.code == "version_mismatch", exc  # a push result landed: read again
            time.sleep(0.01)
    thread.join(60)
    assert not errors, errors
