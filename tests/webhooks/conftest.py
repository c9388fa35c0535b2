from __future__ import annotations

import pytest

from tests.webhooks.factories import make_registration
from webhooks import routing


@pytest.fixture
def make_reg(tenant):
    def make(**fields):
        return make_registration(tenant, **fields)

    return make


@pytest.fixture
def recorded_actions():
    """Register test functions for the four action names; yields the calls they receive."""
    calls: list[tuple[str, object, object]] = []
    names = [
        routing.UPSERT_RECORD,
        routing.DELETE_RECORD,
        routing.FETCH_ENTITY,
        routing.EVALUATE_RULES,
    ]
    previous = {name: routing.registered_actions().get(name) for name in names}

    def recorder(name):
        def action(event, context):
            calls.append((name, event, context))
            return {"seen": event.external_id}

        return action

    for name in names:
        routing.register_action(name, recorder(name))
    yield calls
    for name, fn in previous.items():
        if fn is None:
            routing.unregister_action(name)
        else:
            routing.register_action(name, fn)


@pytest.fixture
def inline(monkeypatch, django_capture_on_commit_callbacks):
    """``with inline(): …`` runs the tasks queued inside the block when it ends (after commit,
    as a worker would)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)
