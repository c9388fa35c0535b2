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


@pytest.fixture
def no_push_rules():
    """``push.evaluate_rules`` follows every routed webhook event; rule-triggered pushes are
    not this suite's subject (and nothing registers the action yet), so a no-op stands in."""
    from webhooks import routing

    previous = routing.registered_actions().get(routing.EVALUATE_RULES)
    routing.register_action(routing.EVALUATE_RULES, lambda event, context: None)
    yield
    if previous is None:
        routing.unregister_action(routing.EVALUATE_RULES)
    else:
        routing.register_action(routing.EVALUATE_RULES, previous)
