"""The one retry policy (castiel.http.retry.RetryPolicy): capped full jitter, never below
Retry-After, a fixed number of attempts."""

from __future__ import annotations

import pytest

from castiel.http.retry import RetryPolicy

pytestmark = pytest.mark.embedded


def test_the_delay_grows_with_the_attempt_and_is_capped():
    policy = RetryPolicy(base=1, cap=10)
    assert all(0 <= policy.delay(1) <= 1 for _ in range(100))
    assert all(0 <= policy.delay(3) <= 4 for _ in range(100))
    assert all(0 <= policy.delay(30) <= 10 for _ in range(100))
    assert len({policy.delay(5) for _ in range(100)}) > 50, "jittered"


def test_the_delay_is_never_below_retry_after():
    policy = RetryPolicy(base=1, cap=10)
    assert all(policy.delay(1, retry_after=7) >= 7 for _ in range(100))
    # Retry-After above the cap still wins: asking earlier would only be refused again.
    assert policy.delay(1, retry_after=60) == 60


def test_attempts_run_out():
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not RetryPolicy().exhausted(10_000), "no limit"


def test_it_is_configured_from_settings(settings):
    settings.CASTIEL_WEBHOOK_RETRY_BASE_SECONDS = 2
    settings.CASTIEL_WEBHOOK_RETRY_CAP_SECONDS = 30
    settings.CASTIEL_WEBHOOK_MAX_ATTEMPTS = 4
    assert RetryPolicy.from_settings("CASTIEL_WEBHOOK") == RetryPolicy(2, 30, 4)
    assert RetryPolicy.from_settings("CASTIEL_WEBHOOK", max_attempts=9).max_attempts == 9
