"""Real qcluster workers: an end-to-end sandbox sync, and a worker SIGKILLed mid-sync."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from syncing.inbound import scheduler
from syncing.inbound.reaper import reap
from syncing.models import Record, SyncRun
from tests.support.processes import manage
from tests.syncing.helpers import make_task, records_of, sandbox_integration

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _sandbox_task(tenant, sandbox, account, page_size=10):
    return make_task(
        sandbox_integration(
            tenant,
            sandbox.url,
            account.slug,
            pagination={"style": "cursor", "page_size": page_size},
        )
    )


@pytest.mark.embedded
def test_a_scheduled_sync_runs_on_a_real_worker(tenant, sandbox, spawn):
    account = sandbox.account()
    sandbox.seed(account, 55)
    task = _sandbox_task(tenant, sandbox, account, page_size=20)
    assert scheduler.tick() == 1

    worker = spawn(*manage("qcluster"), name="qcluster")
    worker.wait_for(
        lambda: SyncRun.objects.filter(task=task).exclude(status="running").exists(),
        timeout=90,
        what="the sync run to finish",
    )
    run = SyncRun.objects.get(task=task)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, run.created) == (3, 55)
    assert run.execution_id and run.correlation_id
    assert records_of(task) == sandbox.expected(account)


def test_a_worker_killed_after_page_k_resumes_with_nothing_lost_or_duplicated(
    tenant, sandbox, spawn
):
    account = sandbox.account(faults={"latency_ms": 250})
    sandbox.seed(account, 120)
    task = _sandbox_task(tenant, sandbox, account)
    scheduler.tick()
    short_lease = {"CASTIEL_SYNC_LEASE_SECONDS": "2"}

    worker = spawn(*manage("qcluster"), env=short_lease, name="qcluster")
    worker.wait_for(
        lambda: SyncRun.objects.filter(task=task, pages__gte=3).exists(),
        timeout=90,
        what="page 3 to commit",
    )
    worker.kill()  # SIGKILL: no cleanup, the lease is simply no longer renewed

    dead = SyncRun.objects.get(task=task)
    committed = dead.pages
    assert dead.status == SyncRun.Status.RUNNING and 3 <= committed < 12
    assert Record.objects.filter(integration=task.integration).count() == committed * 10, (
        "every committed page is complete, no partial page"
    )
    task.refresh_from_db()
    assert task.checkpoint["run_id"] == str(dead.id) and task.checkpoint["cursor"]

    deadline = time.monotonic() + 15
    while task.lease_expires_at > timezone.now():
        assert time.monotonic() < deadline
        time.sleep(0.2)
        task.refresh_from_db()
    assert reap() == {"leases": 1, "runs": 1}
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.LOST

    sandbox.faults(account)  # no more latency
    assert scheduler.tick() == 1
    restarted = spawn(*manage("qcluster"), env=short_lease, name="qcluster-restarted")
    restarted.wait_for(
        lambda: SyncRun.objects.filter(task=task, status="succeeded").exists(),
        timeout=90,
        what="the resumed run to succeed",
    )
    resumed = SyncRun.objects.get(task=task, status="succeeded")
    assert resumed.resumed_from_id == dead.id and resumed.trigger == "resume"
    assert resumed.created == 120 - committed * 10, "nothing re-created, nothing skipped"
    assert resumed.pages == 12 - committed
    assert records_of(task) == sandbox.expected(account)
    assert Record.objects.filter(integration=task.integration).count() == 120
