"""The claim/lease primitive (castiel.db.leases): a claim hands each row to one holder, and a
holder that lost its lease writes nothing — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from castiel.db import leases
from castiel.db.leases import LeaseLost
from syncing.models import OutboundChange
from tests.support.threads import in_threads
from tests.syncing.factories import make_outbound_change

Status = OutboundChange.Status
QUEUED = {"status": Status.QUEUED}
FREE = {"status": Status.PENDING, "lease_owner": ""}


def changes(tenant, n: int) -> list:
    return [make_outbound_change(tenant).pk for _ in range(n)]


def free_rows():
    return OutboundChange.objects.filter(**FREE).order_by("seq", "id")


def claim(limit: int, token: str | None = None) -> tuple[str, list]:
    token = token or leases.new_token()
    with transaction.atomic():
        return token, leases.claim(free_rows(), token=token, limit=limit, values=QUEUED, free=FREE)


def holder(pk) -> tuple[str, str]:
    return tuple(OutboundChange.objects.filter(pk=pk).values_list("lease_owner", "status")[0])


@pytest.mark.embedded
@pytest.mark.django_db
class TestClaims:
    def test_a_claim_leases_up_to_its_limit_and_the_next_claim_gets_the_rest(self, tenant):
        pks = changes(tenant, 5)
        first, got = claim(3)
        second, rest = claim(10)
        assert len(got) == 3 and sorted(got + rest) == sorted(pks)
        assert {holder(pk) for pk in got} == {(first, Status.QUEUED)}
        assert {holder(pk) for pk in rest} == {(second, Status.QUEUED)}
        assert claim(10)[1] == []

    def test_tokens_are_fresh(self):
        assert len({leases.new_token() for _ in range(100)}) == 100

    def test_claim_listed_takes_only_the_rows_still_free(self, tenant):
        pks = changes(tenant, 3)
        OutboundChange.objects.filter(pk=pks[0]).update(lease_owner="someone", status="queued")
        got = leases.claim_listed(OutboundChange, pks, token="me", values=QUEUED, free=FREE)
        assert sorted(got) == sorted(pks[1:])
        assert holder(pks[0]) == ("someone", Status.QUEUED)

    def test_claim_row_is_won_once(self, tenant):
        [pk] = changes(tenant, 1)
        free = OutboundChange.objects.filter(pk=pk, **FREE)
        assert leases.claim_row(free, "a", QUEUED) is True
        assert leases.claim_row(free, "b", QUEUED) is False
        assert holder(pk) == ("a", Status.QUEUED)


@pytest.mark.embedded
@pytest.mark.django_db
class TestFencedWrites:
    def held(self, tenant, n: int, token: str = "a") -> list:
        pks = changes(tenant, n)
        OutboundChange.objects.filter(pk__in=pks).update(
            lease_owner=token, status=Status.RUNNING, lease_expires_at=timezone.now()
        )
        return pks

    def test_the_holder_writes(self, tenant):
        [pk] = self.held(tenant, 1)
        rows = OutboundChange.objects.filter(pk=pk)
        assert leases.fenced_update(rows, "a", {"status_reason": "mine"}) == 1
        assert OutboundChange.objects.get(pk=pk).status_reason == "mine"

    def test_a_lost_lease_writes_nothing(self, tenant):
        [pk] = self.held(tenant, 1, token="b")  # handed on to b
        before = OutboundChange.objects.get(pk=pk)
        rows = OutboundChange.objects.filter(pk=pk)
        assert leases.fenced_update(rows, "a", {"status": Status.SUCCEEDED}) == 0
        with pytest.raises(LeaseLost, match="gone"):
            leases.fenced_update_or_raise(
                rows, "a", {"attempts": F("attempts") + 1, "lease_owner": ""}, lost="gone"
            )
        after = OutboundChange.objects.get(pk=pk)
        assert (after.status, after.attempts, after.lease_owner) == (
            before.status,
            before.attempts,
            "b",
        )

    def test_the_owner_column_can_be_another_value_unique_per_claim(self, tenant):
        [pk] = self.held(tenant, 1)
        lease = OutboundChange.objects.get(pk=pk).lease_expires_at
        rows = OutboundChange.objects.filter(pk=pk)
        stale = lease - timedelta(seconds=1)
        assert (
            leases.fenced_update(rows, stale, {"status_reason": "x"}, owner="lease_expires_at") == 0
        )
        assert (
            leases.fenced_update(rows, lease, {"status_reason": "y"}, owner="lease_expires_at") == 1
        )
        assert OutboundChange.objects.get(pk=pk).status_reason == "y"

    @pytest.mark.parametrize("same_fields", [True, False], ids=["one-statement", "per-row"])
    def test_a_group_writes_only_the_rows_still_held(self, tenant, same_fields):
        mine = self.held(tenant, 3, token="a")
        lost = self.held(tenant, 2, token="b")
        updates = [(pk, {"status_reason": "done", "duration_ms": 1.0}) for pk in mine + lost]
        if not same_fields:
            updates[0] = (mine[0], {"status_reason": "done"})
        held = {"status": Status.RUNNING}
        written = leases.fenced_update_many(OutboundChange, "a", updates, held=held)
        assert written == set(mine)
        reasons = dict(OutboundChange.objects.values_list("pk", "status_reason"))
        assert {reasons[pk] for pk in mine} == {"done"}
        assert {reasons[pk] for pk in lost} == {""}

    def test_a_group_respects_the_held_condition(self, tenant):
        pks = self.held(tenant, 2)
        OutboundChange.objects.filter(pk=pks[1]).update(status=Status.QUEUED)
        updates = [(pk, {"status_reason": "done"}) for pk in pks]
        held = {"status": Status.RUNNING}
        assert leases.fenced_update_many(OutboundChange, "a", updates, held=held) == {pks[0]}


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_split_the_rows_without_waiting(postgres, tenant):
    """PostgreSQL: FOR UPDATE SKIP LOCKED — a claim does not wait for another's locked rows;
    every row goes to exactly one claimer."""
    pks = changes(tenant, 40)
    lock = threading.Lock()
    taken: list = []

    def claimer():
        while True:
            _token, got = claim(5)
            if not got:
                return
            with lock:
                taken.extend(got)

    in_threads(4, claimer)
    assert sorted(taken) == sorted(pks)
