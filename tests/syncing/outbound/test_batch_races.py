"""A batch write that deadlocks with a single write on PostgreSQL is retried, not lost.

A single write locks the record's pending outbox change (the merge) before the record; a
batch locks its records first, then their changes (the pull pipeline's order). When both
meet on one record PostgreSQL aborts one of them; the batch is the one that waited first, so
it is aborted — and ``records_write_batch`` runs it again from the start, on the record as
the single write left it.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.db.models import F

from syncing.models import OutboundChange, Record
from syncing.outbound import batch_changes, local_changes
from syncing.outbound.batch_changes import BatchItem
from tests.syncing.factories import make_record

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_batch_aborted_by_a_deadlock_is_retried_and_applied(postgres, tenant, pushes):
    record = make_record(tenant)
    pending = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.pk, data={"name": "first"}
    ).change
    change_locked, failures = threading.Event(), []

    def single_write():
        """What a merging single write does, slowed down: change first, then the record."""
        try:
            with transaction.atomic():
                OutboundChange.objects.filter(pk=pending.pk).update(coalesced=F("coalesced") + 1)
                change_locked.set()
                time.sleep(0.5)  # the batch locks the record and waits for the change
                Record.objects.filter(pk=record.pk).update(version=F("version") + 1)
        except Exception as exc:  # reported to the test below
            failures.append(exc)
        finally:
            connection.close()

    other = threading.Thread(target=single_write)
    other.start()
    assert change_locked.wait(10)
    result = batch_changes.records_write_batch(
        tenant_id=tenant.id,
        items=[BatchItem("update", record_id=record.pk, data={"name": "from the batch"})],
    )
    other.join(30)
    assert failures == []  # the single write went through
    (item,) = result.results
    assert item.ok, item.error
    stored = Record.objects.get(pk=record.pk)
    # 1 → 2 (first update) → 3 (the single write) → 4 (the batch, retried on top of it).
    assert (stored.data["name"], stored.version, item.record.version) == ("from the batch", 4, 4)
    pending.refresh_from_db()
    assert (pending.fields, pending.coalesced) == (["name"], 2)  # merged into, twice
