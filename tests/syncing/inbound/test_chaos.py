"""Chaos sandbox: 429 + Retry-After, 5xx, timeouts, malformed pages → exact data anyway."""

from __future__ import annotations

import time

import pytest

from sandbox.models import SandboxRequest
from syncing.models import SyncRun
from tests.syncing.helpers import make_task, records_of, run_once, sandbox_integration

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def short_timeouts(settings, fast_retries):
    settings.CASTIEL_OUTBOUND_TIMEOUT = 0.5
    return settings


def test_scripted_faults_are_retried_and_recorded(tenant, sandbox, enqueued, short_timeouts):
    account = sandbox.account(
        faults={
            "retry_after": 1,
            "timeout_seconds": 1.5,
            # Request 1 (page 1) succeeds; page 2 meets every fault once before succeeding.
            "script": ["ok", "429", "503", "timeout", "malformed"],
        }
    )
    sandbox.seed(account, 45)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))

    run = run_once(task, enqueued)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert records_of(task) == sandbox.expected(account)
    assert (run.pages, run.created, run.retries) == (3, 45, 4)
    assert [entry["code"] for entry in run.retry_log] == [
        "http_429",
        "http_503",
        "transporterror",
        "malformed_response",
    ]
    assert all(entry["page"] == 2 for entry in run.retry_log)
    # The timed-out request is logged when the sandbox finally answers it.
    deadline = time.monotonic() + 10
    while SandboxRequest.objects.filter(account=account).count() < 7:
        assert time.monotonic() < deadline, "the sandbox never logged the timed-out request"
        time.sleep(0.1)
    log = list(SandboxRequest.objects.filter(account=account).order_by("number"))
    assert [r.status for r in log] == [200, 429, 503, 504, 200, 200, 200]
    assert log[4].fault == "malformed"
    gap = (log[2].at - log[1].answered_at).total_seconds()
    assert gap >= 1.0, f"Retry-After: 1 was not honoured (next request after {gap:.3f}s)"
    assert run.retry_log[0]["retry_after"] == 1 and run.waited_seconds >= 1


def test_seeded_random_faults_still_give_the_exact_data(tenant, sandbox, enqueued, short_timeouts):
    account = sandbox.account(
        faults={"seed": 7, "error_rate": 0.25, "malformed_rate": 0.15, "retry_after": 1}
    )
    sandbox.seed(account, 60)
    task = make_task(
        sandbox_integration(
            tenant, sandbox.url, account.slug, pagination={"style": "cursor", "page_size": 10}
        )
    )
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert records_of(task) == sandbox.expected(account)
    faulted = SandboxRequest.objects.filter(account=account).exclude(fault="").count()
    assert faulted > 0 and run.retries == faulted


def test_a_rate_limited_account_is_paced_by_its_headers(tenant, sandbox, enqueued, fast_retries):
    """3 requests per 2 s window: the worker waits out the window instead of failing."""
    account = sandbox.account(rate_limit=3, rate_window_seconds=2)
    sandbox.seed(account, 50)
    task = make_task(
        sandbox_integration(
            tenant, sandbox.url, account.slug, pagination={"style": "cursor", "page_size": 10}
        )
    )
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert records_of(task) == sandbox.expected(account)
    statuses = list(SandboxRequest.objects.filter(account=account).values_list("status", flat=True))
    assert statuses.count(200) == 5
    assert run.waited_seconds > 0, "the exhausted limit (remaining 0) was waited out"


def test_a_rate_limiter_deferral_releases_the_run_without_counting_a_retry(
    tenant, sandbox, enqueued, monkeypatch
):
    """The limiter's "wait longer than in-process" (RateLimitDeferred) defers the run to
    retry_after; nothing is sent, nothing fails."""
    from ratelimit.errors import RateLimitDeferred

    class Gate:
        def acquire(self, operation, cost=1):
            raise RateLimitDeferred("fetch deferred: limit used up", retry_after=90)

        def feedback(self, response):
            return None

    monkeypatch.setattr("credentials.clients.gate_for", lambda integration: Gate())
    account = sandbox.account()
    sandbox.seed(account, 5)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
    run = run_once(task, enqueued)
    assert (run.status, run.retries, run.error_code) == ("deferred", 0, "deferred")
    task.refresh_from_db()
    assert 80 < (task.next_run_at - run.started_at).total_seconds() <= 91
    assert not SandboxRequest.objects.filter(account=account).exists()
