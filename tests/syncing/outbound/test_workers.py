"""Real qcluster workers push: an API write reaches the sandbox end to end (also on SQLite with
the ORM broker), and a worker SIGKILLed mid-batch loses nothing and doubles nothing."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from sandbox.models import SandboxObject, SandboxRequest
from syncing.models import OutboundChange
from syncing.outbound import dispatch, local_changes
from syncing.records import outbox
from tests.support.processes import manage
from tests.syncing.outbound_support import applied_writes, sandbox_push_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def no_leftover_wakeup():
    cache.delete(outbox.WAKE_KEY)  # a wake-up flag left by an earlier test would delay ours


@pytest.mark.embedded
def test_an_api_write_is_pushed_by_a_real_worker(api, tenant, sandbox, spawn):
    account = sandbox.account()
    task = sandbox_push_task(tenant, sandbox, account)
    response = api.post(
        "/api/v1/records/",
        {
            "integration": str(task.integration_id),
            "entity_type": "contacts",
            "data": {"first_name": "Ada", "email": "ada@example.com"},
        },
        format="json",
        HTTP_X_CORRELATION_ID="corr-push-e2e",
    )
    assert response.status_code == 201, response.json()
    change = OutboundChange.objects.get(pk=response.json()["outbound_change"])

    worker = spawn(*manage("qcluster"), name="qcluster")
    worker.wait_for(
        lambda: OutboundChange.objects.filter(pk=change.pk, status="succeeded").exists(),
        timeout=90,
        what="the create to be pushed",
    )
    change.refresh_from_db()
    created = SandboxObject.objects.get(account=account)
    assert created.data == {"first_name": "Ada", "email": "ada@example.com"}
    assert change.remote_id == str(created.pk)
    assert change.execution_id and change.correlation_id == "corr-push-e2e"
    assert change.attempts == 1 and change.duration_ms is not None
    request = SandboxRequest.objects.get(account=account, method="POST")
    assert request.idempotency_key == str(change.pk)
    record = api.get(f"/api/v1/records/{response.json()['id']}/").json()
    assert record["external_id"] == str(created.pk)


@pytest.mark.embedded
def test_a_push_worker_killed_mid_batch_pushes_every_change_exactly_once(tenant, sandbox, spawn):
    account = sandbox.account(faults={"latency_ms": 400})
    task = sandbox_push_task(tenant, sandbox, account)
    changes = [
        local_changes.record_create(
            integration=task.integration,
            entity_type="contacts",
            data={"first_name": f"K{i}", "email": f"k{i}@example.com"},
        ).change
        for i in range(10)
    ]
    env = {"CASTIEL_OUTBOUND_LEASE_SECONDS": "2", "CASTIEL_OUTBOUND_BATCH_SIZE": "50"}
    succeeded = OutboundChange.objects.filter(status="succeeded")

    worker = spawn(*manage("qcluster"), env=env, name="qcluster")
    worker.wait_for(lambda: succeeded.count() >= 3, timeout=90, what="three pushes")
    worker.kill()  # SIGKILL mid-batch: no cleanup; the request in flight may still land

    done_before = succeeded.count()
    assert 3 <= done_before < len(changes), "killed mid-batch"
    held = OutboundChange.objects.filter(status="running")
    assert held.count() == len(changes) - done_before
    deadline = time.monotonic() + 15
    while held.filter(lease_expires_at__gt=timezone.now()).exists():
        assert time.monotonic() < deadline, "the lease was never let go"
        time.sleep(0.2)
    assert dispatch.reap_expired() == len(changes) - done_before

    restarted = spawn(*manage("qcluster"), env=env, name="qcluster-restarted")
    # What the minute tick does after the reaper: the changes that were in the killed batch
    # are suspects now (one of them may be what killed it), each dispatched alone.
    assert dispatch.dispatch() == 0
    assert dispatch.dispatch_suspects() == len(changes) - done_before
    restarted.wait_for(
        lambda: succeeded.count() == len(changes), timeout=120, what="every change to land"
    )
    reaped = OutboundChange.objects.filter(lost_attempts=1)
    assert reaped.count() == len(changes) - done_before
    assert len({c.execution_id for c in reaped}) == reaped.count(), "one batch each"

    assert SandboxObject.objects.filter(account=account).count() == len(changes)
    keys = sorted(r.idempotency_key for r in applied_writes(account))
    assert keys == sorted(str(c.pk) for c in changes), "each change applied exactly once"
    for change in OutboundChange.objects.all():
        obj = SandboxObject.objects.get(pk=change.remote_id)
        assert obj.data["first_name"] == f"K{changes.index(change)}"
