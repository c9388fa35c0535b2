"""Fixtures of other apps' tests that the span tests use (tests/observability/
test_span_attributes.py runs the real webhook processing and push paths)."""

from tests.syncing.fixtures import enqueued  # noqa: F401
from tests.syncing.outbound_support import pushes  # noqa: F401
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401
from tests.webhooks.conftest import recorded_actions  # noqa: F401
