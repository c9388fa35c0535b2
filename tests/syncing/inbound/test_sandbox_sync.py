"""End-to-end pulls from the sandbox (served over real HTTP) into the record store."""

from __future__ import annotations

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import SyncRun
from tests.syncing.helpers import (
    SANDBOX_CONFIG,
    make_integration,
    make_task,
    records_of,
    run_once,
    sandbox_integration,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def test_full_pull_then_incremental_changes_land_exactly(tenant, sandbox, enqueued, record_store):
    account = sandbox.account()
    sandbox.seed(account, 45)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, run.fetched, run.created) == (3, 45, 45)
    assert records_of(task, store=record_store) == sandbox.expected(account)
    task.refresh_from_db()
    assert task.checkpoint == {} and task.state["watermark"]

    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    sandbox_services.object_update(obj=objs[3], data={"email": "changed@example.com"})
    sandbox_services.object_delete(obj=objs[7])
    sandbox_services.object_create(account=account, collection="contacts", data={"email": "n@x"})

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.created, run.updated, run.deleted) == (1, 1, 1)
    assert run.fetched < 10, "an incremental run only reads what changed"
    assert records_of(task, store=record_store) == sandbox.expected(account)
    assert str(objs[7].pk) in records_of(task, store=record_store, include_deleted=True)


@pytest.mark.embedded
def test_one_wake_up_drains_its_claimed_batch_and_the_others_find_nothing_left(
    tenant, sandbox, enqueued
):
    """The broker only wakes workers: whichever wake-up arrives first runs every task of the
    batch still queued (the DB is the truth), so lost or late wake-ups lose nothing."""
    from syncing.inbound import scheduler
    from syncing.inbound.worker import run_claimed

    account = sandbox.account()
    sandbox.seed(account, 5)
    base = f"{sandbox.url}/sandbox/{account.slug}/"
    tasks = [
        make_task(make_integration(tenant, base, name=f"s{n}", **SANDBOX_CONFIG)) for n in range(3)
    ]
    assert len(scheduler.claim([t.id for t in tasks])) == 3
    wake_ups = enqueued.drain()
    assert [args[2:] for _f, args, _k in wake_ups] == [(0, 3), (1, 3), (2, 3)]
    assert run_claimed(*wake_ups[1][1]) == 3
    assert [run_claimed(*args) for _f, args, _k in wake_ups] == [0, 0, 0]
    for task in tasks:
        assert records_of(task) == sandbox.expected(account)
    assert SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED).count() == 3


@pytest.mark.embedded
def test_a_wake_up_out_of_time_hands_the_rest_of_its_batch_to_a_fresh_one(
    tenant, sandbox, enqueued, settings, monkeypatch
):
    from syncing.inbound import scheduler, worker

    account = sandbox.account()
    sandbox.seed(account, 5)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
    scheduler.claim([task.id])
    [(_f, args, _k)] = enqueued.drain()
    continued = []
    monkeypatch.setattr(worker, "enqueue", lambda *a, **k: continued.append((a, k)))
    settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS = 0
    assert worker.run_claimed(*args) == 0
    assert continued == [
        (("syncing.tasks.run_inbound_batch", args[0], "schedule"), {"kind": "inbound"})
    ]
    settings.CASTIEL_SYNC_RUN_BUDGET_SECONDS = 60
    assert worker.run_claimed(*continued[0][0][1:]) == 1
    assert records_of(task) == sandbox.expected(account)
