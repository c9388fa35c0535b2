"""Push to the sandbox (served over real HTTP): create, update, delete with idempotency keys and
conditional writes; the push policies; non-retryable errors → dead letters → replay; no echo."""

from __future__ import annotations

import time

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject, SandboxRequest
from syncing.models import Conflict, DeadLetter, OutboundChange, SyncRun
from syncing.outbound import local_changes
from syncing.outbound.deadletters import dead_letter_discard, dead_letter_replay
from syncing.records.stores import get_store
from syncing.services import conflict_resolve
from tests.syncing.helpers import records_of, run_once
from tests.syncing.outbound_support import (
    applied_writes,
    changes_of,
    push_all,
    sandbox_push_task,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


def setup(tenant, sandbox, enqueued, n=3, **task_fields):
    account = sandbox.account()
    sandbox.seed(account, n)
    task = sandbox_push_task(tenant, sandbox, account, **task_fields)
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return account, task


def local(task, external_id):
    return next(r for r in get_store().iter_scope(_scope(task)) if r.external_id == external_id)


def _scope(task):
    from syncing.records.stores.base import Scope

    return Scope(task.tenant_id, task.integration_id, task.entity_type)


def obj(pk) -> SandboxObject:
    return SandboxObject.objects.get(pk=pk)


@pytest.mark.embedded
def test_create_update_delete_land_with_idempotency_keys_and_versions(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued)
    first = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = local(task, str(first.pk))
    update = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"company": "Renamed Co"}
    ).change
    create = local_changes.record_create(
        integration=task.integration,
        entity_type="contacts",
        data={"first_name": "Zelda", "email": "zelda@hyrule.example"},
    ).change
    assert push_all(pushes) == {"succeeded": 2}

    first.refresh_from_db()
    assert first.data["company"] == "Renamed Co"
    created = SandboxObject.objects.get(account=account, data__first_name="Zelda")
    update.refresh_from_db()
    create.refresh_from_db()
    assert (create.remote_id, update.remote_id) == (str(created.pk), str(first.pk))
    assert update.remote_version == sandbox_services.iso(first.updated_at)
    mine = get_store().get(tenant.id, create.record_id)
    assert mine.external_id == str(created.pk)
    assert mine.remote_version == sandbox_services.iso(created.updated_at)
    assert mine.data == sandbox_services.serialize(created), "local mirrors what landed"
    writes = {r.method: r for r in applied_writes(account)}
    assert writes["PATCH"].idempotency_key == str(update.pk)
    assert writes["POST"].idempotency_key == str(create.pk)

    local_changes.record_delete(tenant_id=tenant.id, record_id=mine.id)
    assert push_all(pushes) == {"succeeded": 1}
    assert obj(created.pk).deleted_at is not None


def test_a_pushed_update_comes_back_as_an_echo_not_a_change_or_conflict(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued, conflict_strategy="manual")
    target = SandboxObject.objects.filter(account=account).order_by("id").last()
    record = local(task, str(target.pk))
    local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"phone": "+14155550000"}
    )
    assert push_all(pushes) == {"succeeded": 1}

    run = run_once(task, enqueued)  # incremental: only what changed since the last pull
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert run.fetched == 1, "the pushed record is what changed remotely"
    assert (run.created, run.updated, run.conflicts, run.echoes) == (0, 0, 0, 1)
    assert not Conflict.objects.exists()
    assert records_of(task) == sandbox.expected(account)
    assert not local(task, str(target.pk)).locally_modified

    # A real remote change afterwards is a plain update (the push moved the base).
    sandbox_services.object_update(obj=obj(target.pk), data={"company": "Theirs"})
    run = run_once(task, enqueued)
    assert (run.updated, run.conflicts, run.echoes) == (1, 0, 0)


@pytest.mark.embedded
def test_validation_error_is_a_dead_letter_at_once_and_replay_after_the_fix_succeeds(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = local(task, str(target.pk))
    bad = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"email": "not-an-address"}
    ).change
    assert push_all(pushes) == {"dead": 1}

    bad.refresh_from_db()
    assert (bad.status, bad.attempts, bad.error_code) == ("dead", 1, "http_422")
    letter = DeadLetter.objects.get(change=bad)
    assert (letter.status, letter.retryable, letter.response_status) == ("open", False, 422)
    assert letter.request["method"] == "PATCH"
    assert letter.request["url"].endswith(f"/contacts/{target.pk}/")
    assert letter.request["headers"]["idempotency-key"] == str(bad.pk)
    assert "not-an-address" in letter.request["body"]
    assert "must be an email address" in letter.response_body
    assert letter.attempt_log[-1]["outcome"] == "dead"
    assert obj(target.pk).data["email"] != "not-an-address"

    # The fix is a later change: it waits behind the dead one (order per record).
    fix = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"email": "fixed@example.com"}
    ).change
    assert push_all(pushes) == {}
    assert OutboundChange.objects.get(pk=fix.pk).status == "pending"

    dead_letter_replay(dead_letter=letter, by="test")
    assert push_all(pushes) == {"succeeded": 2}
    assert obj(target.pk).data["email"] == "fixed@example.com"
    assert [c.status for c in changes_of(record.id)] == ["succeeded", "succeeded"]
    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by) == ("replayed", "test")
    keys = [r.idempotency_key for r in SandboxRequest.objects.filter(method="PATCH")]
    assert keys[0] != keys[1], "a request the provider rejected is replayed under a new key"


def test_404_on_update_is_a_dead_letter_and_replays_once_the_object_is_back(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = local(task, str(target.pk))
    sandbox_services.object_delete(obj=target)  # gone remotely, unknown to us
    change = local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"company": "Still here?"}
    ).change
    assert push_all(pushes) == {"dead": 1}
    letter = DeadLetter.objects.get(change=change)
    assert (letter.error_code, letter.response_status, letter.attempts) == ("http_404", 404, 1)

    SandboxObject.objects.filter(pk=target.pk).update(deleted_at=None)  # the cause is fixed
    dead_letter_replay(dead_letter=letter, by="ops")
    assert push_all(pushes) == {"succeeded": 1}
    assert obj(target.pk).data["company"] == "Still here?"


def test_discarding_a_dead_letter_lets_the_records_later_changes_go(
    tenant, sandbox, enqueued, pushes
):
    account, task = setup(tenant, sandbox, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = local(task, str(target.pk))
    local_changes.record_update(tenant_id=tenant.id, record_id=record.id, data={"email": "nope"})
    push_all(pushes)
    local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"email": "ok@example.com"}
    )
    dead_letter_discard(dead_letter=DeadLetter.objects.get(), by="ops")
    assert push_all(pushes) == {"succeeded": 1}
    assert [c.status for c in changes_of(record.id)] == ["discarded", "succeeded"]
    assert obj(target.pk).data["email"] == "ok@example.com"


class TestPolicies:
    """The remote changed after our last pull; the task's push policy decides."""

    def changed_both_sides(self, tenant, sandbox, enqueued, strategy):
        account, task = setup(tenant, sandbox, enqueued, push_conflict_strategy=strategy)
        target = SandboxObject.objects.filter(account=account).order_by("id").first()
        sandbox_services.object_update(obj=target, data={"company": "Theirs"})
        record = local(task, str(target.pk))
        change = local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"company": "Ours"}
        ).change
        return account, task, target, record, change

    def test_local_wins_pushes_anyway_and_says_so(self, tenant, sandbox, enqueued, pushes):
        _, _, target, _, change = self.changed_both_sides(tenant, sandbox, enqueued, "local_wins")
        assert push_all(pushes) == {"succeeded": 1}
        assert obj(target.pk).data["company"] == "Ours"
        change.refresh_from_db()
        assert "local wins" in change.status_reason
        statuses = list(SandboxRequest.objects.filter(method="PATCH").values_list("status"))
        assert statuses == [(412,), (200,)], "the conditional write noticed the remote change"

    def test_remote_wins_drops_the_local_change_and_takes_the_remote(
        self, tenant, sandbox, enqueued, pushes
    ):
        _, task, target, _, change = self.changed_both_sides(
            tenant, sandbox, enqueued, "remote_wins"
        )
        assert push_all(pushes) == {"skipped": 1}
        assert obj(target.pk).data["company"] == "Theirs"
        assert local(task, str(target.pk)).data["company"] == "Theirs"
        assert OutboundChange.objects.get(pk=change.pk).status == "skipped"

    def test_remote_wins_the_conflicting_field_and_the_other_local_edits_still_go_out(
        self, tenant, sandbox, enqueued, pushes
    ):
        account, task = setup(tenant, sandbox, enqueued, push_conflict_strategy="remote_wins")
        target = SandboxObject.objects.filter(account=account).order_by("id").first()
        sandbox_services.object_update(obj=target, data={"company": "Theirs"})
        record = local(task, str(target.pk))
        change = local_changes.record_update(
            tenant_id=tenant.id,
            record_id=record.id,
            data={"company": "Ours", "phone": "+14155550124"},
        ).change
        assert push_all(pushes) == {"succeeded": 1}
        remote = obj(target.pk).data
        assert (remote["company"], remote["phone"]) == ("Theirs", "+14155550124")
        after = local(task, str(target.pk))
        assert (after.data["company"], after.data["phone"]) == ("Theirs", "+14155550124")
        change.refresh_from_db()
        assert "remote wins there; pushed phone" in change.status_reason
        # The conditional write was refused; the second PATCH sent the phone alone (the
        # company would otherwise be "Ours" at the provider).
        patches = SandboxRequest.objects.filter(method="PATCH").order_by("number")
        assert [r.status for r in patches] == [412, 200]

    @pytest.mark.parametrize("strategy", ["remote_wins", "manual"])
    def test_a_push_of_fields_the_remote_did_not_touch_goes_out_whatever_the_policy(
        self, tenant, sandbox, enqueued, pushes, strategy
    ):
        account, task = setup(tenant, sandbox, enqueued, push_conflict_strategy=strategy)
        target = SandboxObject.objects.filter(account=account).order_by("id").first()
        sandbox_services.object_update(obj=target, data={"company": "Theirs"})
        record = local(task, str(target.pk))
        change = local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"phone": "+14155550123"}
        ).change
        assert push_all(pushes) == {"succeeded": 1}
        assert (obj(target.pk).data["company"], obj(target.pk).data["phone"]) == (
            "Theirs",
            "+14155550123",
        )
        after = local(task, str(target.pk))
        assert (after.data["company"], after.data["phone"]) == ("Theirs", "+14155550123")
        assert not Conflict.objects.exists()
        change.refresh_from_db()
        assert "none of the fields pushed" in change.status_reason
        patches = SandboxRequest.objects.filter(method="PATCH").order_by("number")
        assert [r.status for r in patches] == [412, 200], "refused conditionally, then sent"

    def test_manual_holds_the_change_until_the_conflict_is_resolved(
        self, tenant, sandbox, enqueued, pushes
    ):
        _, _, target, record, change = self.changed_both_sides(tenant, sandbox, enqueued, "manual")
        assert push_all(pushes) == {"conflict": 1}
        conflict = Conflict.objects.get(record_id=record.id)
        assert conflict.local_data["company"] == "Ours"
        assert conflict.remote_data["company"] == "Theirs"
        assert OutboundChange.objects.get(pk=change.pk).status == "conflict"
        later = local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"phone": "+14155550199"}
        ).change
        assert push_all(pushes) == {}, "the record's later change waits behind the held one"

        conflict_resolve(conflict=conflict, resolution="local", by="ops")
        assert push_all(pushes) == {"succeeded": 2}
        assert obj(target.pk).data["company"] == "Ours"
        assert obj(target.pk).data["phone"] == "+14155550199"
        assert OutboundChange.objects.get(pk=later.pk).status == "succeeded"


def test_a_retried_create_without_idempotency_keys_is_found_by_its_marker(
    tenant, sandbox, enqueued, pushes, settings
):
    """No idempotency header: the create writes a marker; a retry after a lost answer looks it
    up instead of creating a second object."""
    settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_OUTBOUND_TIMEOUT = 0.5
    settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = 0.05
    account = sandbox.account(faults={"script": ["lost"], "timeout_seconds": 1.5})
    task = sandbox_push_task(
        tenant,
        sandbox,
        account,
        config={"idempotency_header": "", "marker_field": "castiel_id"},
    )
    change = local_changes.record_create(
        integration=task.integration, entity_type="contacts", data={"first_name": "Once"}
    ).change
    assert push_all(pushes) == {"retry": 1, "succeeded": 1}
    assert SandboxObject.objects.filter(account=account).count() == 1
    created = SandboxObject.objects.get(account=account)
    assert created.data["castiel_id"] == str(change.pk)
    change.refresh_from_db()
    assert change.remote_id == str(created.pk) and change.replayed
    deadline = time.monotonic() + 10
    while SandboxRequest.objects.count() < 2:  # the lost POST is logged once it "answers"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log = list(SandboxRequest.objects.order_by("number"))
    assert [(r.method, r.applied, r.status) for r in log] == [
        ("POST", True, 504),
        ("GET", False, 200),
    ]


def test_a_pull_conflict_won_by_local_data_is_pushed_back(tenant, sandbox, enqueued, pushes):
    """Two-way: when the pull resolves a conflict in favour of the local copy (here
    ``local_wins``), the provider is brought in line by an outbound change."""
    account, task = setup(tenant, sandbox, enqueued, conflict_strategy="local_wins")
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = local(task, str(target.pk))
    # A local edit and a remote edit of the same record, the pull first.
    get_store().local_edit(tenant.id, record.id, {**record.data, "company": "Ours"}, at=None)
    sandbox_services.object_update(obj=target, data={"company": "Theirs"})
    run = run_once(task, enqueued)
    assert run.conflicts == 1
    change = OutboundChange.objects.get(record_id=record.id)
    # Only the conflicting field goes back: the provider's own updated_at is kept locally.
    assert (change.origin, change.fields) == ("conflict", ["company"])
    assert push_all(pushes) == {"succeeded": 1}
    assert obj(target.pk).data["company"] == "Ours"
