"""Concurrent dispatchers on PostgreSQL: the fair claim (skip scan + LATERAL heads, locked
FOR UPDATE SKIP LOCKED) hands every change to exactly one of them."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from syncing.models import OutboundChange
from syncing.outbound import dispatch, local_changes, push
from tests.factories import IntegrationFactory, TenantFactory
from tests.support.threads import in_threads


def _changes(tenant, n: int) -> None:
    integration = IntegrationFactory(tenant=tenant, config={"base_url": "http://127.0.0.1:9"})
    for i in range(n):
        local_changes.record_create(integration=integration, entity_type="contacts", data={"n": i})


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_claim_each_change_exactly_once_and_fairly(postgres, pushes):
    tenants = [TenantFactory() for _ in range(3)]
    for tenant, n in zip(tenants, (90, 30, 5), strict=True):
        _changes(tenant, n)
    claimed: list[list] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def dispatcher():
        try:
            while True:
                _token, ids = dispatch.claim(10)
                if not ids:
                    return
                with lock:
                    claimed.append(ids)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    every = [pk for batch in claimed for pk in batch]
    assert len(every) == len(set(every)) == 125, "each change claimed exactly once"
    assert OutboundChange.objects.filter(status="queued").count() == 125
    # The smallest tenant's five changes all went out in the first batches, not after the
    # 90-change tenant's backlog.
    smallest = set(OutboundChange.objects.filter(tenant=tenants[2]).values_list("id", flat=True))
    first_batches = {pk for batch in claimed[:4] for pk in batch}
    assert smallest & first_batches


@pytest.mark.django_db(transaction=True)
def test_a_batch_message_delivered_twice_is_taken_by_one_worker(postgres, pushes):
    """The take is a conditional UPDATE on the rows themselves: of two workers woken by the
    same message at the same moment, one takes the batch (a claim written through a join
    was a subquery PostgreSQL does not re-check after the row lock, and both took it)."""

    _changes(TenantFactory(), 5)
    dispatch.dispatch()
    [token] = pushes.drain()
    taken = in_threads(2, lambda: len(push.PushBatch(token).take()))
    assert sorted(taken) == [0, 5]
