"""Fixtures of the notifications tests: the fake chat server and fast delivery settings."""

from __future__ import annotations

import pytest

from tests.notifications.support import (
    SLACK_PATH,
    TEAMS_PATH,
    assert_valid_slack,
    assert_valid_teams,
    running_chat,
)


@pytest.fixture
def chat():
    """Slack, Teams and a webhook receiver on 127.0.0.1. Afterwards every Slack message it
    received passed slack_sdk's validation and every Teams card Microsoft's parser."""
    with running_chat() as fake:
        yield fake
        for body in fake.bodies(SLACK_PATH):
            assert_valid_slack(body)
        assert_valid_teams(fake.bodies(TEAMS_PATH))


@pytest.fixture(autouse=True)
def fast_delivery(settings):
    """No sleeping in the worker, short timeouts, small backoff: tests drive time themselves."""
    settings.CASTIEL_NOTIFY_MAX_INLINE_WAIT = 0
    settings.CASTIEL_NOTIFY_TIMEOUT = 1.0
    settings.CASTIEL_NOTIFY_RETRY_BASE_SECONDS = 1.0
    settings.CASTIEL_NOTIFY_RETRY_CAP_SECONDS = 60.0
    settings.CASTIEL_NOTIFY_LINK_BASE_URL = "https://castiel.example.com"
    settings.CASTIEL_RATELIMIT_BACKEND = "local"
    yield settings


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``committed(fn)``: run ``fn`` and then what its commit would run (the test's own
    transaction never commits, and events wait for the commit)."""

    def run(fn):
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    return run
