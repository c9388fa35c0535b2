"""A run renews its lease before every request — unless its page commit renewed it a moment
ago (syncing/inbound/waiting.py): then nobody can have taken the task, and asking the
database again would cost every page a write and a commit."""

from __future__ import annotations

import pytest

from syncing.inbound import leases, scheduler
from syncing.inbound.waiting import Waiting
from syncing.models import SyncTask
from tests.factories import IntegrationFactory
from tests.syncing.helpers import make_task

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


class Clock:
    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr("syncing.inbound.waiting.time.monotonic", lambda: self.now)


@pytest.fixture
def run(tenant, enqueued, monkeypatch, settings):
    """(the waits of a run holding a 300 s lease on a task, its clock, the task)."""
    settings.CASTIEL_SYNC_LEASE_SECONDS = 300
    task = make_task(IntegrationFactory(tenant=tenant))
    scheduler.claim([task.id])
    [(_path, (token, *_rest), _kind)] = enqueued.drain()
    assert leases.take(task.id, token)
    return Waiting(task, None, token, "generic_rest"), Clock(monkeypatch), task


def expiry(task):
    return SyncTask.objects.values_list("lease_expires_at", flat=True).get(pk=task.pk)


def test_a_lease_renewed_a_moment_ago_is_not_renewed_before_the_next_request(run):
    waiting, clock, task = run
    waiting.renew()  # the first request: renewed
    renewed = expiry(task)
    clock.now += 29  # under a tenth of the lease
    waiting.renew()
    assert expiry(task) == renewed
    clock.now += 2
    waiting.renew()
    assert expiry(task) > renewed


def test_a_lost_lease_is_still_found_before_a_request_once_the_moment_has_passed(run):
    waiting, clock, task = run
    waiting.renewed()  # a page commit renewed it
    SyncTask.objects.filter(pk=task.pk).update(lease_owner="someone-else")
    waiting.renew()  # within the moment: no question asked
    clock.now += 31
    with pytest.raises(leases.LeaseLost):
        waiting.renew()
