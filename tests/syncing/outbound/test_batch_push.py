"""Batch push to the sandbox (real HTTP): one request per group of changes, each item's
answer back on its own change — success, retried later in a later batch under its key, or a
dead letter for that change alone; what a batch cannot express goes one by one."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.utils import timezone

from integrations.adapters.base import BatchSupport
from sandbox.models import SandboxObject, SandboxRequest
from syncing.models import DeadLetter, OutboundChange, SyncRun
from syncing.outbound import batches, local_changes
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope
from tests.syncing.helpers import run_once
from tests.syncing.outbound_support import push_all, sandbox_push_task

pytestmark = [pytest.mark.django_db(transaction=True)]

BATCH = {"batch_path": "/contacts/batch/{operation}/", "conditional_writes": False}


def setup(tenant, sandbox, enqueued, n=3, faults=None, **config):
    account = sandbox.account()
    sandbox.seed(account, n)
    task = sandbox_push_task(tenant, sandbox, account, config={**BATCH, **config})
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    if faults:  # the push's faults, not the pull's
        sandbox.faults(account, **faults)
        account.refresh_from_db()
    SandboxRequest.objects.all().delete()
    return account, task


def records(task):
    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    return sorted(get_store().iter_scope(scope), key=lambda r: int(r.external_id))


def create(task, **data):
    return local_changes.record_create(
        integration=task.integration, entity_type="contacts", data=data
    ).change


def requests_made():
    return [(r.method, r.path.rsplit("/contacts/", 1)[-1]) for r in SandboxRequest.objects.all()]


def push_until_done(pushes, rounds=40) -> dict[str, int]:
    """Push until no change is pending (retries released to the outbox come due quickly)."""
    totals: dict[str, int] = {}
    for _ in range(rounds):
        for outcome, n in push_all(pushes).items():
            totals[outcome] = totals.get(outcome, 0) + n
        if not OutboundChange.objects.filter(status__in=["pending", "queued"]).exists():
            return totals
        time.sleep(0.1)
    raise AssertionError(f"changes still pending: {totals}")


@pytest.fixture
def fast_retries(settings):
    settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = 0.05


@pytest.mark.embedded
def test_creates_updates_and_deletes_go_one_request_per_operation(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued, n=4)
    mine = records(task)
    for record in mine[:3]:
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"company": f"New {record.id}"}
        )
    local_changes.record_delete(tenant_id=tenant.id, record_id=mine[3].id)
    created = [create(task, first_name=f"N{i}", email=f"n{i}@example.com") for i in range(5)]

    assert push_all(pushes) == {"succeeded": 9}
    # One change alone (the delete) is one request either way: it goes as a single call.
    assert sorted(requests_made()) == [
        ("DELETE", f"{mine[3].external_id}/"),
        ("POST", "batch/create/"),
        ("POST", "batch/update/"),
    ]
    for record in mine[:3]:
        assert SandboxObject.objects.get(pk=record.external_id).data["company"] == (
            f"New {record.id}"
        )
    assert SandboxObject.objects.get(pk=mine[3].external_id).deleted_at is not None
    for change in created:
        change.refresh_from_db()
        landed = SandboxObject.objects.get(pk=change.remote_id)
        record = get_store().get(tenant.id, change.record_id)
        assert record.external_id == str(landed.pk)
        assert record.data["first_name"] == landed.data["first_name"]
        assert record.remote_version
    assert SandboxObject.objects.filter(account=account, deleted_at__isnull=True).count() == 8


def test_batches_hold_at_most_the_declared_size(tenant, sandbox, enqueued, pushes):
    account, task = setup(tenant, sandbox, enqueued, n=0, batch_max_size=2)
    for i in range(6):
        create(task, first_name=f"N{i}")
    assert push_all(pushes) == {"succeeded": 6}
    assert requests_made() == [("POST", "batch/create/")] * 3
    assert SandboxObject.objects.filter(account=account).count() == 6


def test_a_failed_item_is_a_dead_letter_of_its_own_change_only(tenant, sandbox, enqueued, pushes):
    account, task = setup(tenant, sandbox, enqueued, n=0)
    good = [create(task, first_name=f"G{i}", email=f"g{i}@example.com") for i in range(3)]
    bad = create(task, first_name="Bad", email="not-an-email")

    assert push_all(pushes) == {"succeeded": 3, "dead": 1}
    assert requests_made() == [("POST", "batch/create/")]
    assert SandboxRequest.objects.get().status == 207
    bad.refresh_from_db()
    assert bad.status == "dead" and bad.error_code == "http_422"
    letter = DeadLetter.objects.get()
    assert letter.change_id == bad.pk and "validation failed" in letter.error_message
    # What was sent for this change: the batch's request, with this item alone as its body.
    assert letter.request["method"] == "POST"
    assert letter.request["url"].endswith("/contacts/batch/create/")
    assert "not-an-email" in letter.request["body"] and "g0@example.com" not in str(letter.request)
    assert letter.response_status == 422
    for change in good:
        change.refresh_from_db()
        assert change.status == "succeeded"
    assert SandboxObject.objects.filter(account=account).count() == 3


def test_a_failed_request_retries_every_item_in_a_later_batch(
    tenant, sandbox, enqueued, pushes, fast_retries
):
    account, task = setup(tenant, sandbox, enqueued, n=0, faults={"script": ["503"]})
    changes = [create(task, first_name=f"N{i}") for i in range(4)]

    totals = push_until_done(pushes)
    assert totals == {"retry": 4, "succeeded": 4}
    # The batch's changes share one backoff: they come due, and go out, together again.
    assert requests_made() == [("POST", "batch/create/")] * 2
    for change in changes:
        change.refresh_from_db()
        assert (change.status, change.attempts) == ("succeeded", 2)
    assert SandboxObject.objects.filter(account=account).count() == 4


def test_a_failed_request_gives_its_changes_one_due_time(tenant, sandbox, enqueued, pushes):
    _, task = setup(tenant, sandbox, enqueued, n=0, faults={"script": ["503"]})
    changes = [create(task, first_name=f"N{i}") for i in range(4)]

    assert push_all(pushes) == {"retry": 4}
    # One instant, not four near ones: a dispatch between them would split the batch into
    # two requests against the provider's budget.
    due = {
        change.next_attempt_at
        for change in OutboundChange.objects.filter(pk__in=[c.pk for c in changes])
    }
    assert len(due) == 1
    assert due.pop() > timezone.now()


def test_a_lost_batch_answer_is_replayed_per_item_never_applied_twice(
    tenant, sandbox, enqueued, pushes, fast_retries, settings
):
    settings.CASTIEL_OUTBOUND_TIMEOUT = 0.5
    account, task = setup(
        tenant, sandbox, enqueued, n=0, faults={"script": ["lost"], "timeout_seconds": 1.5}
    )
    changes = [create(task, first_name=f"N{i}") for i in range(3)]

    totals = push_until_done(pushes)
    assert totals == {"retry": 3, "succeeded": 3}
    assert SandboxObject.objects.filter(account=account).count() == 3
    for change in changes:
        change.refresh_from_db()
        assert change.status == "succeeded" and change.replayed
        record = get_store().get(tenant.id, change.record_id)
        assert record.external_id == change.remote_id


def test_retryable_item_errors_are_retried_and_permanent_ones_are_dead(
    tenant, sandbox, enqueued, pushes, fast_retries
):
    """The sandbox fails a share of items: each change's result is exactly right."""
    account, task = setup(
        tenant,
        sandbox,
        enqueued,
        n=0,
        faults={"item_error_rate": 0.2, "item_retry_rate": 0.2, "seed": 7},
    )
    changes = [create(task, first_name=f"N{i}") for i in range(40)]

    push_until_done(pushes)
    dead = set()
    for change in changes:
        change.refresh_from_db()
        assert change.status in ("succeeded", "dead"), change.status
        if change.status == "dead":
            dead.add(change.pk)
            assert change.error_code == "http_422"
        else:
            assert SandboxObject.objects.filter(pk=change.remote_id).exists()
    assert 0 < len(dead) < len(changes)
    assert set(DeadLetter.objects.values_list("change_id", flat=True)) == dead
    assert SandboxObject.objects.filter(account=account).count() == len(changes) - len(dead)


def test_conditional_updates_go_one_by_one(tenant, sandbox, enqueued, pushes):
    """If-Match is per request: with conditional writes on, updates are single calls (creates
    still go in batches)."""
    _account, task = setup(tenant, sandbox, enqueued, n=2, conditional_writes=True)
    for record in records(task):
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"company": "Changed"}
        )
    create(task, first_name="New")
    create(task, first_name="Newer")
    assert push_all(pushes) == {"succeeded": 4}
    assert sorted(m for m, _ in requests_made()) == ["PATCH", "PATCH", "POST"]
    assert ("POST", "batch/create/") in requests_made()


# -- grouping (no HTTP) ------------------------------------------------------------------------


def test_a_group_never_holds_two_changes_of_one_record_nor_two_tenants():
    support = BatchSupport(operations=frozenset({"create", "update", "delete"}), max_size=3)
    adapter = SimpleNamespace(batch_support=support, supports_conditional_writes=False)
    ctx = SimpleNamespace(
        adapter=adapter,
        integration=SimpleNamespace(is_operational=True),
        strategy="local_wins",
        mapping=SimpleNamespace(to_remote=lambda data, fields=None: dict(data)),
    )

    def change(n, record, tenant="t1", operation="update"):
        return SimpleNamespace(
            pk=n,
            tenant_id=tenant,
            integration_id="i",
            entity_type="contacts",
            operation=operation,
            record_id=record,
            idempotency_key=str(n),
            attempts=1,
            force=False,
            fields=[],
        )

    def record(rid):
        return SimpleNamespace(
            id=rid, external_id=f"x{rid}", deleted_at=None, remote_version="", data={"a": 1}
        )

    changes = [
        change(1, "r1"),
        change(2, "r1"),
        change(3, "r2"),
        change(4, "r3", tenant="t2"),
        change(5, "r4"),
        change(6, "r5"),
        change(7, "r6", operation="delete"),
    ]
    fake = SimpleNamespace(
        records={c.record_id: record(c.record_id) for c in changes}, context=lambda c: ctx
    )
    groups, singles = batches.split(fake, changes)
    assert [[e.change.pk for e in g] for g in groups] == [[1, 3, 5], [2, 6]]
    # Alone in their group (another tenant; the only delete): one by one.
    assert [c.pk for c in singles] == [4, 7]
