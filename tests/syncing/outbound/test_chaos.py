"""The sandbox fails 30 % of writes (503, 429 + Retry-After, timeouts before the write, answers
lost after it): every change still lands exactly once, in order per record."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject, SandboxRequest
from syncing.models import OutboundChange
from syncing.outbound import dispatch, local_changes
from syncing.records.stores import get_store
from tests.syncing.outbound_support import applied_writes, push_all, sandbox_push_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RECORDS = 6
FAULTS = {
    "methods": ["POST", "PATCH", "DELETE"],
    "seed": 8,
    "error_rate": 0.10,  # 503
    "rate_limit_rate": 0.08,  # 429 + Retry-After: 1
    "timeout_rate": 0.06,  # no answer in time, nothing applied
    "lost_rate": 0.06,  # applied, then no answer in time
    "retry_after": 1,
    "timeout_seconds": 1.2,
}


@pytest.fixture
def quick(settings):
    settings.CASTIEL_OUTBOUND_TIMEOUT = 0.6
    settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = 0.05
    settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = 0.2
    settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS = 12
    return settings


def test_every_change_lands_exactly_once_in_order(tenant, sandbox, pushes, quick):
    account = sandbox.account(faults=FAULTS)
    task = sandbox_push_task(tenant, sandbox, account)
    made = [
        local_changes.record_create(
            integration=task.integration,
            entity_type="contacts",
            data={"first_name": f"P{i}", "email": f"p{i}@example.com", "step": 0},
        ).record
        for i in range(RECORDS)
    ]
    push_all(pushes)

    # Two rounds of edits per record, the second made while the first is claimed (so it is a
    # change of its own, queued behind), then deletes of two records.
    dispatch.dispatch()
    for step in (1, 2):
        for record in made:
            local_changes.record_update(
                tenant_id=tenant.id, record_id=record.id, data={"step": step}
            )
    local_changes.record_update(tenant_id=tenant.id, record_id=made[0].id, data={"step": 3})
    for record in made[-2:]:
        local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
    push_all(pushes)
    _wait_for_sleeping_answers(account)

    changes = list(OutboundChange.objects.order_by("seq"))
    assert {c.status for c in changes} <= {"succeeded", "superseded"}, [
        (c.operation, c.status, c.error_summary) for c in changes if c.status != "succeeded"
    ]
    assert any(c.attempts > 1 for c in changes), "the faults made some pushes retry"

    # Exactly once: every pushed change was applied by exactly one request.
    applied = applied_writes(account)
    keys = [r.idempotency_key.split(".")[0] for r in applied]
    pushed = {str(c.pk) for c in changes if c.status == "succeeded"}
    assert sorted(keys) == sorted(pushed), "a change applied twice, or not at all"
    assert SandboxObject.objects.filter(account=account).count() == RECORDS, "no duplicates"

    # In order per record: the writes each object received follow the outbox order.
    by_object = defaultdict(list)
    for request in applied:
        by_object[request.path].append(request.idempotency_key.split(".")[0])
    for record in made:
        stored = get_store().get(tenant.id, record.id)
        expected = [
            str(c.pk)
            for c in changes
            if c.record_id == record.id and c.status == "succeeded" and c.operation != "create"
        ]
        assert by_object[f"/sandbox/{account.slug}/contacts/{stored.external_id}/"] == expected

    # What landed is the local state.
    for record in made:
        stored = get_store().get(tenant.id, record.id)
        remote = SandboxObject.objects.get(pk=stored.external_id)
        if stored.deleted_at:
            assert remote.deleted_at is not None
        else:
            assert sandbox_services.serialize(remote) == stored.data
    assert get_store().get(tenant.id, made[0].id).data["step"] == 3

    # Retry-After was honoured: a change's next request came ≥ 1 s after its 429.
    log = list(SandboxRequest.objects.filter(account=account).order_by("number"))
    faults = {r.fault for r in log}
    assert {"429", "503", "timeout", "lost"} <= faults, f"the seed exercised only {faults}"
    assert any(r.replayed for r in log), "a lost answer was recovered by an idempotent replay"
    limited = [r for r in log if r.status == 429]
    for answer in limited:
        retry = next(
            r
            for r in log
            if r.number > answer.number and r.idempotency_key == answer.idempotency_key
        )
        gap = (retry.at - answer.answered_at).total_seconds()
        assert gap >= 1.0, f"retried {gap:.3f}s after a 429 with Retry-After: 1"


def _wait_for_sleeping_answers(account, timeout=10):
    """Timed-out requests are logged when the sandbox finally answers them."""
    deadline = time.monotonic() + timeout
    while SandboxRequest.objects.filter(account=account, status=0).exists() or (
        SandboxRequest.objects.filter(account=account).count()
        < account.__class__.objects.get(pk=account.pk).request_count
    ):
        assert time.monotonic() < deadline, "the sandbox never answered its timed-out requests"
        time.sleep(0.1)
