"""The inbound worker under Castiel's real rate limiter: deferred, never failed or dropped."""

from __future__ import annotations

import pytest

from ratelimit.models import RateLimitOverride
from syncing.models import SyncRun, SyncTask
from tests.syncing.helpers import make_task, records_of, run_once, sandbox_integration

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.embedded
def test_a_throttled_fetch_defers_the_task_and_the_next_run_finishes(
    tenant, sandbox, enqueued, settings
):
    settings.CASTIEL_RATELIMIT_MAX_INPROCESS_WAIT = 0.5
    settings.CASTIEL_RATELIMIT_POLICY_CACHE_SECONDS = 0
    account = sandbox.account()
    sandbox.seed(account, 30)
    integration = sandbox_integration(
        tenant, sandbox.url, account.slug, pagination={"style": "page", "page_size": 10}
    )
    RateLimitOverride.objects.create(
        tenant=tenant,
        integration=integration,
        level=RateLimitOverride.Level.OPERATION,
        operation="fetch",
        limit=2,
        window_seconds=60,
    )
    task = make_task(integration)

    first = run_once(task, enqueued)

    assert first.status == SyncRun.Status.DEFERRED, first.error_summary
    assert first.retries == 0, "the limiter's wait is not a failed attempt"
    assert "fetch" in first.error_summary and "limit" in first.error_summary
    task.refresh_from_db()
    assert task.status == SyncTask.Status.IDLE and task.checkpoint, "progress kept"
    assert (task.next_run_at - first.finished_at).total_seconds() > 1
    assert len(records_of(task)) == 20, "pages admitted before the limit are stored"

    RateLimitOverride.objects.filter(integration=integration).delete()
    from ratelimit.services import counters_reset

    counters_reset(integration=integration)
    second = run_once(task, enqueued)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_summary
    assert records_of(task) == sandbox.expected(account)
