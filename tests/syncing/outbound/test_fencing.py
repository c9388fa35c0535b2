"""Push results are written only for changes the worker still holds, in one statement or many."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from syncing.models import OutboundChange
from syncing.outbound.fencing import fenced_update, fenced_update_many
from tests.syncing.factories import make_outbound_change

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

TOKEN = "worker-a"


def held_changes(tenant, n: int, token: str = TOKEN) -> list[OutboundChange]:
    changes = [make_outbound_change(tenant) for _ in range(n)]
    OutboundChange.objects.filter(pk__in=[c.pk for c in changes]).update(
        status=OutboundChange.Status.RUNNING,
        lease_owner=token,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    return changes


def result(i: int) -> dict:
    """The fields the push worker writes for a succeeded change (every column type it uses)."""
    return {
        "status": OutboundChange.Status.SUCCEEDED,
        "lease_owner": "",
        "lease_expires_at": None,
        "finished_at": timezone.now(),
        "duration_ms": 12.5 + i,
        "error_code": "",
        "attempt_log": [{"attempt": 1, "outcome": "succeeded", "note": f"é {i}", "n": None}],
        "remote_id": f"remote-{i}",
        "remote_version": f'"etag-{i}"',
        "replayed": i % 2 == 0,
        "status_reason": "",
    }


def test_a_group_is_written_for_the_changes_still_held_and_only_those(tenant):
    changes = held_changes(tenant, 4)
    stolen = changes[2]
    # Its lease expired and another worker took it meanwhile.
    OutboundChange.objects.filter(pk=stolen.pk).update(lease_owner="worker-b")

    updates = [(c.pk, result(i)) for i, c in enumerate(changes)]
    with CaptureQueriesContext(connection) as queries:
        written = fenced_update_many(TOKEN, updates)

    assert written == {c.pk for c in changes} - {stolen.pk}
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1  # one statement for the whole group
    for i, change in enumerate(changes):
        row = OutboundChange.objects.get(pk=change.pk)
        if change is stolen:
            assert (row.status, row.lease_owner, row.remote_id) == ("running", "worker-b", "")
            continue
        expected = result(i)
        assert row.status == "succeeded" and row.lease_owner == "" and row.lease_expires_at is None
        assert row.duration_ms == expected["duration_ms"]
        assert row.attempt_log == expected["attempt_log"]
        assert (row.remote_id, row.remote_version) == (f"remote-{i}", f'"etag-{i}"')
        assert row.replayed is (i % 2 == 0)
        assert abs((row.finished_at - expected["finished_at"]).total_seconds()) < 5


def test_a_change_in_another_state_is_not_written_even_with_the_token(tenant):
    [change] = held_changes(tenant, 1)
    OutboundChange.objects.filter(pk=change.pk).update(status=OutboundChange.Status.PENDING)
    assert fenced_update_many(TOKEN, [(change.pk, result(0)), (change.pk, result(1))]) == set()
    assert OutboundChange.objects.get(pk=change.pk).status == "pending"


def test_groups_with_different_fields_or_one_change_take_the_per_change_path(tenant):
    first, second = held_changes(tenant, 2)
    written = fenced_update_many(
        TOKEN, [(first.pk, result(0)), (second.pk, {"status_reason": "only this"})]
    )
    assert written == {first.pk, second.pk}
    assert OutboundChange.objects.get(pk=second.pk).status_reason == "only this"
    assert OutboundChange.objects.get(pk=second.pk).status == "running"
    assert fenced_update(first.pk, TOKEN, {"status_reason": "x"}) is False  # no longer held
    assert fenced_update_many(TOKEN, []) == set()
