"""Drive the outbound push in tests: capture dispatch messages and run the batches in-process.

The real code path is used throughout (dispatch → claim → push_batch → adapter → HTTP); only
the queue is replaced, as the inbound tests do with ``enqueued``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from syncing.models import OutboundChange
from syncing.outbound import dispatch, push


@dataclass
class Pushes:
    batches: list[str] = field(default_factory=list)
    wakeups: int = 0

    def drain(self) -> list[str]:
        taken, self.batches[:] = list(self.batches), []
        return taken


@pytest.fixture
def pushes(monkeypatch):
    """Capture the push messages and wake-ups instead of sending them to the broker."""
    captured = Pushes()

    def fake_enqueue_many(func_path, arg_lists, *, kind):
        assert func_path == dispatch.WORKER and kind == "outbound"
        captured.batches.extend(args[0] for args in arg_lists)

    def fake_request_dispatch():
        captured.wakeups += 1

    monkeypatch.setattr("syncing.outbound.dispatch.enqueue_many", fake_enqueue_many)
    monkeypatch.setattr("syncing.records.outbox.request_dispatch", fake_request_dispatch)
    return captured


def push_all(pushes: Pushes, *, max_rounds: int = 50) -> dict[str, int]:
    """Dispatch and run batches until nothing is due (retries inside batches included);
    suspect changes (their worker stopped before) alone, as the minute tick does."""
    totals: dict[str, int] = {}
    dispatch.dispatch_suspects()
    dispatch.dispatch()
    for _ in range(max_rounds):
        tokens = pushes.drain()
        if not tokens:
            return totals
        for token in tokens:
            for outcome, n in push.push_batch(token).items():
                totals[outcome] = totals.get(outcome, 0) + n
    raise AssertionError(f"still dispatching after {max_rounds} rounds: {totals}")


def changes_of(record_id) -> list[OutboundChange]:
    return list(OutboundChange.objects.filter(record_id=record_id).order_by("seq"))


# What the sandbox offers a push (tests/syncing/helpers.SANDBOX_CONFIG covers the pull).
SANDBOX_PUSH = {
    "list_path": "/contacts/",
    "item_path": "/contacts/{id}/",
    "idempotency_header": "Idempotency-Key",
    "version_header": "ETag",
    "conditional_writes": True,
    "read_only_fields": ["created_at", "deleted_at"],
}


def sandbox_push_task(tenant, sandbox, account, **task_fields):
    from tests.syncing.helpers import make_task, sandbox_integration

    overrides = task_fields.pop("config", {})
    integration = sandbox_integration(
        tenant, sandbox.url, account.slug, **{**SANDBOX_PUSH, **overrides}
    )
    return make_task(integration, **task_fields)


def applied_writes(account) -> list:
    """The sandbox's log of writes that changed something, in the order it applied them."""
    from sandbox.models import SandboxRequest

    return list(SandboxRequest.objects.filter(account=account, applied=True).order_by("number"))
