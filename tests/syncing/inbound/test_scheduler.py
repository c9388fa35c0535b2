"""Scheduler ticks, leases and the reaper: fair claims, exclusive runs, crash recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import Integration
from syncing.inbound import leases, scheduler
from syncing.inbound.reaper import reap
from syncing.inbound.worker import run_claimed, run_inbound
from syncing.models import SyncRun, SyncTask
from tests.factories import IntegrationFactory, TenantFactory
from tests.support.threads import in_threads


def bulk_tasks(tenant, n: int, *, priority: int = 0, **fields) -> list[SyncTask]:
    integration = IntegrationFactory(tenant=tenant)
    due = timezone.now() - timedelta(minutes=1)
    return SyncTask.objects.bulk_create(
        [
            SyncTask(
                tenant=tenant,
                integration=integration,
                entity_type=f"e{i}",
                priority=priority,
                next_run_at=due,
                **fields,
            )
            for i in range(n)
        ]
    )


@pytest.mark.embedded
@pytest.mark.django_db
def test_one_tenants_backlog_does_not_delay_another_tenants_task(enqueued):
    busy, quiet = TenantFactory(), TenantFactory()
    bulk_tasks(busy, 250)
    [theirs] = bulk_tasks(quiet, 1)

    claimed = scheduler.claim(scheduler.fair_candidates(timezone.now(), 100))

    assert len(claimed) == 100
    assert theirs.id in claimed, "the quiet tenant's task made the first batch"
    # A few small wake-ups for the batch, not one message per task; each names a slot.
    assert len(enqueued.messages) == settings.CASTIEL_SYNC_WAKEUPS_PER_BATCH
    assert {m[2] for m in enqueued.messages} == {"inbound"}
    tokens = {m[1][0] for m in enqueued.messages}
    assert len(tokens) == 1
    assert SyncTask.objects.filter(lease_owner=tokens.pop(), status="queued").count() == 100
    assert sorted(m[1][2] for m in enqueued.messages) == list(range(len(enqueued.messages)))
    assert SyncTask.objects.filter(status="queued").count() == 100
    assert scheduler.tick(batch_size=100) == 151
    assert SyncTask.objects.exclude(status="queued").count() == 0


@pytest.mark.embedded
@pytest.mark.django_db
def test_priority_orders_a_tenants_tasks(enqueued):
    tenant = TenantFactory()
    low = bulk_tasks(tenant, 5, priority=0)
    high = bulk_tasks(tenant, 3, priority=10)
    claimed = scheduler.claim(scheduler.fair_candidates(timezone.now(), 3))
    assert set(claimed) == {t.id for t in high}
    assert not set(claimed) & {t.id for t in low}


@pytest.mark.embedded
@pytest.mark.django_db
def test_only_due_free_enabled_tasks_of_active_integrations_are_claimed(enqueued):
    tenant = TenantFactory()
    [ok] = bulk_tasks(tenant, 1)
    bulk_tasks(tenant, 1, enabled=False)
    bulk_tasks(tenant, 1, status=SyncTask.Status.PAUSED)
    bulk_tasks(tenant, 1, lease_owner="someone", status=SyncTask.Status.RUNNING)
    [later] = bulk_tasks(tenant, 1)
    SyncTask.objects.filter(pk=later.pk).update(next_run_at=timezone.now() + timedelta(hours=1))
    [reauth] = bulk_tasks(tenant, 1)
    Integration.objects.filter(pk=reauth.integration_id).update(status="reauth_required")
    assert scheduler.tick() == 1
    assert list(SyncTask.objects.filter(status="queued").values_list("id", flat=True)) == [ok.id]
    assert len(enqueued.messages) == 1


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_stale_or_duplicate_message_never_starts_a_second_run(enqueued, tenant):
    [task] = bulk_tasks(tenant, 1)
    scheduler.claim([task.id])
    (_path, (token, trigger, _slot, _slots), _kind) = enqueued.drain()[0]
    assert run_claimed("not-the-token", trigger) == 0
    assert run_inbound(task.id, "not-the-token", trigger) is None
    assert leases.take(task.id, token) is True
    assert leases.take(task.id, token) is False, "a redelivered message does nothing"
    assert run_claimed(token, trigger) == 0, "a wake-up for a batch already taken runs nothing"
    assert not SyncRun.objects.exists()


@pytest.mark.embedded
@pytest.mark.django_db
def test_run_now_on_a_busy_task_runs_again_after(enqueued, tenant):
    [task] = bulk_tasks(tenant, 1)
    assert scheduler.run_now(task) is True
    assert scheduler.run_now(task) is False
    task.refresh_from_db()
    assert task.run_requested and len(enqueued.messages) == 1


@pytest.mark.embedded
@pytest.mark.django_db
def test_reaper_returns_expired_leases_and_marks_the_run_lost(enqueued, tenant):
    [task] = bulk_tasks(tenant, 1)
    scheduler.claim([task.id])
    (_path, (token, _trigger, _slot, _slots), _kind) = enqueued.drain()[0]
    task_id = task.id
    leases.take(task_id, token)
    run = SyncRun.objects.create(tenant=tenant, task=task, mode="incremental", lease_owner=token)
    SyncTask.objects.filter(pk=task.pk).update(checkpoint={"cursor": {"page": 3}})

    assert reap() == {"leases": 0, "runs": 0}, "a live lease is left alone"
    SyncTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert reap() == {"leases": 1, "runs": 1}

    task.refresh_from_db()
    run.refresh_from_db()
    assert (task.status, task.lease_owner, task.checkpoint) == ("idle", "", {"cursor": {"page": 3}})
    assert run.status == SyncRun.Status.LOST and run.error_code == "worker_lost"
    with pytest.raises(leases.LeaseLost):
        leases.renew(task_id, token)
    assert scheduler.tick() == 1, "the task is due again at once"


# -- races on PostgreSQL -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_ticks_racing_claim_each_task_exactly_once(postgres, enqueued):
    tenants = [TenantFactory() for _ in range(3)]
    for tenant in tenants:
        bulk_tasks(tenant, 120)
    results = in_threads(2, lambda: scheduler.tick(batch_size=25))
    assert sum(results) == 360
    assert SyncTask.objects.filter(status="queued").count() == 360, "every task claimed once"
    claims = set(SyncTask.objects.values_list("lease_owner", flat=True))
    assert claims == {m[1][0] for m in enqueued.messages}, "each claimed batch was woken"


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_hold_one_task_at_once(postgres, enqueued, tenant):
    [task] = bulk_tasks(tenant, 1)
    scheduler.claim([task.id])
    (_path, (token_a, _trigger, _slot, _slots), _kind) = enqueued.drain()[0]
    task_id = task.id
    # The same wake-up delivered to two workers at the same moment: one wins.
    assert sorted(in_threads(2, lambda: leases.take(task_id, token_a))) == [False, True]

    # Worker A stalls past its lease; the reaper hands the task to worker B.
    SyncTask.objects.filter(pk=task.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    reap()
    scheduler.claim([task.id])
    (_path, (token_b, _trigger, _slot, _slots), _kind) = enqueued.drain()[0]
    assert leases.take(task_id, token_b)
    # A wakes up and tries to commit a page: fenced out, nothing written.
    with pytest.raises(leases.LeaseLost), transaction.atomic():
        leases.lock_for_page(task_id, token_a)
    with transaction.atomic():
        leases.lock_for_page(task_id, token_b)  # B keeps going
