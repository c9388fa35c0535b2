"""Fixtures the observability tests share, and those of other apps' tests that the span
tests use (tests/observability/test_span_attributes.py runs the real webhook processing and
push paths)."""

import pytest

from tests.syncing.fixtures import enqueued  # noqa: F401
from tests.syncing.outbound_support import pushes  # noqa: F401
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401
from tests.webhooks.conftest import recorded_actions  # noqa: F401


@pytest.fixture
def unused_port():
    """A loopback port nothing listens on (an exporter sending there finds nobody)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
