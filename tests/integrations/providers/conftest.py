import pytest
import responses as responses_lib


@pytest.fixture
def rsps():
    """The HTTP boundary of a provider that cannot run locally: ``responses`` answers with
    the provider's documented payloads (the fixtures); everything behind the adapter —
    credentials, rate-limit gate, sync and push workers, record store — runs for real."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fast_pushes(settings):
    """Push retries without real waiting (the backoff itself is tested in tests/syncing)."""
    settings.CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = 0.05
    return settings


@pytest.fixture
def fast_syncs(settings):
    settings.CASTIEL_SYNC_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_SYNC_RETRY_CAP_SECONDS = 0.05
    return settings
