"""The outbox itself: atomic with the local change, order per record, coalescing, claims,
leases and the reaper, and how the rate limiter's refusals are handled. Pushes go to a real
local HTTP server recording what it receives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from castiel.tenancy.models import Tenant
from integrations.models import Integration
from ratelimit.errors import RateLimitDeferred, RateLimitRefused
from syncing import metrics
from syncing.models import DeadLetter, OutboundChange, Record
from syncing.outbound import dispatch, local_changes, push
from syncing.outbound.deadletters import dead_letter_replay
from syncing.records.stores import get_store
from tests.factories import IntegrationFactory, TenantFactory
from tests.syncing.outbound_support import changes_of, push_all

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]


@pytest.fixture
def sink(http_server):
    """A provider that accepts every write and remembers the order it got them in."""
    counter = {"n": 0}

    @http_server.route("POST", "/contacts")
    def create(request):
        counter["n"] += 1
        return 201, {}, {**request.json(), "id": f"r{counter['n']}"}

    return http_server


def integration_for(tenant, server):
    return IntegrationFactory(tenant=tenant, config={"base_url": server.url})


def item_route(server, external_id, *, status=200):
    def handler(request):
        if request.method == "DELETE":
            return 204, {}, b""
        return status, {}, {**request.json(), "id": external_id}

    for method in ("PATCH", "DELETE"):
        server.routes[(method, f"/contacts/{external_id}")] = handler


def created(tenant, server, pushes, data=None):
    integration = integration_for(tenant, server)
    made = local_changes.record_create(
        integration=integration, entity_type="contacts", data=data or {"name": "A"}
    )
    assert push_all(pushes) == {"succeeded": 1}
    record = get_store().get(tenant.id, made.record.id)
    item_route(server, record.external_id)
    return integration, record


# -- one transaction -------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_an_update_and_its_outbox_row_roll_back_together(tenant, sink, pushes, monkeypatch):
    _integration, record = created(tenant, sink, pushes)
    store = get_store()
    real_save = store.save_record

    def save_then_crash(edited):
        real_save(edited)  # the record is written …
        raise Boom("… and the process dies before the commit")

    monkeypatch.setattr(store, "save_record", save_then_crash)
    with pytest.raises(Boom):
        local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"name": "B"})
    monkeypatch.undo()
    assert get_store().get(tenant.id, record.id).data == record.data
    assert [c.operation for c in changes_of(record.id)] == ["create"]


def test_a_failed_outbox_insert_leaves_no_record_behind(tenant, sink, monkeypatch):
    integration = integration_for(tenant, sink)

    def no_outbox(**fields):
        raise Boom("the outbox insert failed")

    monkeypatch.setattr(OutboundChange.objects, "create", no_outbox)
    with pytest.raises(Boom):
        local_changes.record_create(integration=integration, entity_type="contacts", data={"x": 1})
    assert not Record.objects.exists()


def test_a_change_inside_a_rolled_back_outer_transaction_never_leaves(tenant, sink, pushes):
    integration = integration_for(tenant, sink)
    with pytest.raises(Boom), transaction.atomic():
        local_changes.record_create(integration=integration, entity_type="contacts", data={"x": 1})
        raise Boom
    assert not OutboundChange.objects.exists() and not Record.objects.exists()
    assert pushes.wakeups == 0, "the wake-up is sent only after commit"
    assert push_all(pushes) == {} and sink.requests == []


# -- order and coalescing --------------------------------------------------------------------


def test_pending_updates_coalesce_into_one_push_of_the_union_of_fields(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes, {"name": "A", "email": "a@x", "n": 0})
    first = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "B"}
    )
    second = local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"n": 1})
    assert second.change.pk == first.change.pk
    assert push_all(pushes) == {"succeeded": 1}
    change = OutboundChange.objects.get(pk=first.change.pk)
    assert (change.fields, change.coalesced) == (["n", "name"], 1)
    patch = [r for r in sink.requests if r.method == "PATCH"]
    assert len(patch) == 1 and patch[0].json() == {"name": "B", "n": 1}


def test_an_update_while_the_previous_one_is_in_flight_is_pushed_after_it(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    first = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "B"}
    )
    token, claimed = dispatch.claim(10)
    assert claimed == [first.change.pk]
    second = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "C"}
    )
    assert second.change.pk != first.change.pk, "nothing merges into a claimed change"
    assert second.change.seq > first.change.seq
    assert dispatch.claim(10)[1] == [], "the successor waits for its head"

    push.push_batch(token)
    assert push_all(pushes) == {"succeeded": 1}
    bodies = [r.json()["name"] for r in sink.requests if r.method == "PATCH"]
    assert bodies == ["C", "C"], "each push sends the record as it is now, in order"
    assert [c.status for c in changes_of(record.id)] == ["succeeded"] * 3


def test_deleting_a_record_never_created_remotely_pushes_nothing(tenant, sink, pushes):
    integration = integration_for(tenant, sink)
    made = local_changes.record_create(
        integration=integration, entity_type="contacts", data={"x": 1}
    )
    gone = local_changes.record_delete(tenant_id=tenant.id, record_id=made.record.id)
    assert gone.change is None and gone.record.deleted_at is not None
    assert push_all(pushes) == {} and sink.requests == []
    assert OutboundChange.objects.get().status == "superseded"


def test_a_delete_supersedes_a_pending_update(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    update = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "Z"}
    )
    delete = local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
    assert push_all(pushes) == {"succeeded": 1}
    assert OutboundChange.objects.get(pk=update.change.pk).status == "superseded"
    assert OutboundChange.objects.get(pk=delete.change.pk).status == "succeeded"
    assert [r.method for r in sink.requests] == ["POST", "DELETE"]


def test_no_change_no_push_and_deleted_records_refuse_edits(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    same = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data=dict(record.data)
    )
    assert same.change is None
    local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
    with pytest.raises(local_changes.RecordChangeError) as error:
        local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"name": "Q"})
    assert error.value.code == "record_deleted"
    with pytest.raises(local_changes.RecordChangeError) as error:
        local_changes.record_delete(tenant_id=tenant.id, record_id=record.id, expected_version=1)
    assert error.value.status == 409


# -- claims, leases, the reaper --------------------------------------------------------------


def test_paused_integrations_and_future_retries_are_not_claimed(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"n": 1}
    ).change
    OutboundChange.objects.filter(pk=change.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert dispatch.claim(10)[1] == []
    OutboundChange.objects.filter(pk=change.pk).update(next_attempt_at=timezone.now())
    change.integration.__class__.objects.filter(pk=change.integration_id).update(status="paused")
    assert dispatch.claim(10)[1] == []
    change.integration.__class__.objects.filter(pk=change.integration_id).update(status="active")
    assert dispatch.claim(10)[1] == [change.pk]


def test_a_stale_or_duplicate_message_does_nothing(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"n": 1})
    token, _ = dispatch.claim(10)
    assert push.push_batch(token) == {"succeeded": 1}
    assert push.push_batch(token) == {}
    assert push.push_batch("not-a-token") == {}
    assert len([r for r in sink.requests if r.method == "PATCH"]) == 1


def test_expired_leases_are_reaped_and_the_change_is_pushed_again(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"n": 1}
    ).change
    token, _ = dispatch.claim(10)
    batch = push.PushBatch(token)
    batch.take()  # the worker took it … and died
    assert dispatch.reap_expired() == 0, "a live lease is left alone"
    OutboundChange.objects.filter(pk=change.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert dispatch.reap_expired() == 1
    change.refresh_from_db()
    assert (change.status, change.lease_owner, change.attempts) == ("pending", "", 1)
    assert "crashed or killed" in change.status_reason
    assert change.lost_attempts == 1 and change.attempt_log[-1]["outcome"] == "lost"
    assert push_all(pushes) == {"succeeded": 1}
    change.refresh_from_db()
    assert change.attempts == 2 and change.attempt_log[-1]["attempt"] == 2
    # The first worker wakes up and pushes: its result is fenced off (the lease is gone).
    stale = OutboundChange.objects.get(pk=change.pk)
    stale.attempts = 1
    batch.push(stale)
    batch.acks.flush()
    change.refresh_from_db()
    assert change.status == "succeeded" and change.attempt_log[-1]["attempt"] == 2


def test_a_change_whose_worker_keeps_dying_is_pushed_alone_then_dead_lettered(
    tenant, sink, pushes, settings
):
    settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS = 2
    lost_before = metrics.LOST_ATTEMPTS.labels("generic_rest")._value.get()
    _integration, poisoned = created(tenant, sink, pushes)
    _integration, innocent = created(tenant, sink, pushes, data={"name": "B"})
    poison = local_changes.record_update(tenant_id=tenant.id, record_id=poisoned.id, data={"n": 1})
    fine = local_changes.record_update(tenant_id=tenant.id, record_id=innocent.id, data={"n": 2})
    patches = lambda: [r.path for r in sink.requests if r.method == "PATCH"]  # noqa: E731

    def die_holding(token):
        push.PushBatch(token).take()  # the worker takes its batch … and dies
        OutboundChange.objects.filter(lease_owner=token).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

    token, ids = dispatch.claim(10)
    assert len(ids) == 2
    die_holding(token)
    assert dispatch.reap_expired() == 2
    # Both are suspects now: not in ordinary batches, each in a batch of its own.
    assert dispatch.dispatch() == 0 and pushes.drain() == []
    assert dispatch.dispatch_suspects() == 2
    singles = pushes.drain()
    assert sorted(OutboundChange.objects.get(lease_owner=t).pk for t in singles) == sorted(
        [poison.change.pk, fine.change.pk]
    )
    for single in singles:
        if OutboundChange.objects.get(lease_owner=single).pk == fine.change.pk:
            assert push.push_batch(single) == {"succeeded": 1}  # pushed alone, unharmed
        else:
            die_holding(single)  # the poison change kills its worker again
    assert dispatch.reap_expired() == 1

    change = OutboundChange.objects.get(pk=poison.change.pk)
    assert (change.status, change.attempts, change.lost_attempts) == ("dead", 2, 2)
    assert [e["outcome"] for e in change.attempt_log[-2:]] == ["lost", "lost"]
    letter = DeadLetter.objects.get(change=change)
    assert (letter.error_code, letter.retryable, letter.attempts) == ("worker_lost", True, 2)
    assert "gave up after 2 attempts" in letter.error_message
    assert patches() == [f"/contacts/{innocent.external_id}"]
    lost = metrics.LOST_ATTEMPTS.labels("generic_rest")._value.get() - lost_before
    assert lost == 3, "two attempts of the poison change, one of its batch-mate"

    dead_letter_replay(dead_letter=letter, by="ops")  # the cause was fixed
    assert push_all(pushes) == {"succeeded": 1}
    assert patches() == [f"/contacts/{innocent.external_id}", f"/contacts/{poisoned.external_id}"]


def test_a_batch_message_never_taken_goes_back_without_an_attempt(tenant, sink, pushes):
    _integration, record = created(tenant, sink, pushes)
    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"n": 1}
    ).change
    token, _ = dispatch.claim(10)  # queued, but the message is lost
    OutboundChange.objects.filter(lease_owner=token).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert dispatch.reap_expired() == 1
    change.refresh_from_db()
    assert (change.status, change.attempts, change.lost_attempts) == ("pending", 0, 0)
    assert "not taken" in change.status_reason
    assert push_all(pushes) == {"succeeded": 1}


# -- the rate limiter's answers ----------------------------------------------------------------


class FakeGate:
    """Refuses deletes and defers updates while ``throttled`` is set."""

    def __init__(self):
        self.throttled = True
        self.asked: list[str] = []

    def acquire(self, operation, cost=1):
        self.asked.append(operation)
        if not self.throttled:
            return
        if operation == "delete":
            raise RateLimitRefused(
                "delete refused while throttled: the integration's provider limit of 10 per "
                "1s is used up; room again in 30.0s",
                retry_after=30,
            )
        if operation == "update":
            raise RateLimitDeferred("update deferred: limit used up", retry_after=12)

    def feedback(self, response):
        return None


def test_throttled_deletes_are_refused_and_kept_pending_with_the_reason(
    tenant, sink, pushes, monkeypatch
):
    _integration, record = created(tenant, sink, pushes)
    gate = FakeGate()
    monkeypatch.setattr("credentials.clients.gate_for", lambda integration: gate)
    update = local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"n": 2})
    assert push_all(pushes) == {"deferred": 1}
    update.change.refresh_from_db()
    assert (update.change.status, update.change.attempts) == ("pending", 0)
    wait = (update.change.next_attempt_at - timezone.now()).total_seconds()
    assert 10 < wait <= 12

    OutboundChange.objects.filter(pk=update.change.pk).update(next_attempt_at=timezone.now())
    gate.throttled = False
    assert push_all(pushes) == {"succeeded": 1}
    gate.throttled = True
    delete = local_changes.record_delete(tenant_id=tenant.id, record_id=record.id).change
    assert push_all(pushes) == {"refused": 1}
    delete.refresh_from_db()
    assert delete.status == "pending" and delete.attempts == 0
    assert "refused while throttled" in delete.status_reason
    assert not [r for r in sink.requests if r.method == "DELETE"], "nothing was sent"
    assert not delete.dead_letters.exists()

    OutboundChange.objects.filter(pk=delete.pk).update(next_attempt_at=timezone.now())
    gate.throttled = False
    assert push_all(pushes) == {"succeeded": 1}
    assert [r.method for r in sink.requests][-1] == "DELETE"
    assert gate.asked.count("delete") == 2


def test_retryable_failures_back_off_then_give_up_into_a_dead_letter(
    tenant, sink, pushes, settings
):
    settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = 0.02
    _integration, record = created(tenant, sink, pushes)
    item_route(sink, record.external_id, status=503)
    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"n": 3}
    ).change
    settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS = 3  # no sync task: the setting is the limit
    assert push_all(pushes) == {"retry": 2, "dead": 1}
    change.refresh_from_db()
    assert (change.status, change.attempts) == ("dead", 3)
    assert [e["outcome"] for e in change.attempt_log] == ["retry", "retry", "dead"]
    letter = change.dead_letters.get()
    assert letter.retryable and letter.response_status == 503
    assert letter.error_message.startswith("gave up after 3 attempts")


# -- fairness across tenants -------------------------------------------------------------------


def burst(tenant, server, n: int) -> list[OutboundChange]:
    integration = integration_for(tenant, server)
    return [
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"n": i}
        ).change
        for i in range(n)
    ]


def test_one_tenants_burst_does_not_hold_up_another_tenants_change(tenant, other_tenant, sink):
    third = TenantFactory()
    flood = burst(tenant, sink, 60)  # an import: 60 changes, all due before the others
    few = burst(other_tenant, sink, 3)
    one = burst(third, sink, 1)

    _token, ids = dispatch.claim(4)
    # Every tenant's oldest change before anyone's second: the longest-waiting heads first.
    assert set(ids) >= {flood[0].pk, few[0].pk, one[0].pk} and len(ids) == 4
    _token, ids = dispatch.claim(50)
    # The share each tenant gets is filled up from the oldest, so a batch stays full.
    assert len(ids) == 50 and {few[1].pk, few[2].pk} <= set(ids)
    _token, ids = dispatch.claim(50)
    assert len(ids) == 60 + 3 + 1 - 54 and set(ids) <= {c.pk for c in flood}


def test_with_more_busy_tenants_than_room_the_longest_waiting_go_first(tenant, other_tenant, sink):
    first = burst(tenant, sink, 5)
    second = burst(other_tenant, sink, 5)
    third = burst(TenantFactory(), sink, 5)
    _token, ids = dispatch.claim(2)
    assert ids and set(ids) == {first[0].pk, second[0].pk}
    _token, ids = dispatch.claim(2)
    # By due time the first two tenants' next changes would win again (their bursts came
    # first); the third has nothing in flight, so it goes first now.
    assert third[0].pk in ids
    dispatch.claim(3)
    # Round-robin: after seven changes each tenant has two or three in flight.
    queued = OutboundChange.objects.filter(status="queued").values_list("tenant_id")
    per_tenant = queued.annotate(n=Count("id")).values_list("n", flat=True)
    assert sorted(per_tenant) == [2, 2, 3]


def test_the_fair_claim_takes_exactly_the_due_heads(tenant, other_tenant, sink):
    """The PostgreSQL claim spells ``dispatch.due`` out in SQL; both must agree on what is
    claimable (run on both databases)."""
    ready = burst(tenant, sink, 3)
    later = burst(other_tenant, sink, 2)
    OutboundChange.objects.filter(pk=later[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    suspect = burst(other_tenant, sink, 1)[0]
    OutboundChange.objects.filter(pk=suspect.pk).update(lost_attempts=1)
    paused = burst(TenantFactory(), sink, 1)[0]
    Integration.objects.filter(pk=paused.integration_id).update(status="paused")
    disabled = burst(TenantFactory(), sink, 1)[0]
    Integration.objects.filter(pk=disabled.integration_id).update(enabled=False)
    deactivated = burst(TenantFactory(), sink, 1)[0]
    Tenant.objects.filter(pk=deactivated.tenant_id).update(is_active=False)
    # A record's next change waits behind its open first one (here a dead letter).
    first = ready[0]
    OutboundChange.objects.filter(pk=first.pk).update(status="dead")
    behind = local_changes.record_update(
        tenant_id=tenant.id, record_id=first.record_id, data={"n": "again"}
    ).change
    assert behind.pk != first.pk
    expected = set(dispatch.due().filter(lost_attempts=0).values_list("id", flat=True))
    assert expected == {ready[1].pk, ready[2].pk, later[1].pk}
    _token, ids = dispatch.claim(100)
    assert set(ids) == expected
