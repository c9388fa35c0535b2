"""The gate inside the real outbound client, against a real local HTTP server.

Limits are set the way an operator sets them (overrides); the backend is whatever the
profile configures (Redis in the full suite, the database in the embedded one).
"""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from castiel.http.errors import OutboundError, RateLimitedError
from credentials.clients import client_for
from ratelimit import metrics
from ratelimit.errors import (
    RateLimitDeferred,
    RateLimitExceedsCapacity,
    RateLimitRefused,
)
from ratelimit.models import RateLimitOverride
from ratelimit.selectors import usage_for
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def server(http_server):
    http_server.route("GET", "/items")(lambda r: (200, {}, [{"id": 1}]))
    http_server.route("POST", "/items")(lambda r: (201, {}, {"id": 2}))
    http_server.route("DELETE", "/items/1")(lambda r: (204, {}, b""))
    return http_server


@pytest.fixture
def integration(tenant, server):
    return IntegrationFactory(tenant=tenant, config={"base_url": server.url})


def limit(integration, level, limit, window, operation=""):
    RateLimitOverride.objects.create(
        tenant=integration.tenant,
        integration=integration if level != "tenant" else None,
        level=level,
        operation=operation,
        limit=limit,
        window_seconds=window,
    )


def sent(server, method):
    return [r for r in server.requests if r.method == method]


def test_delete_while_throttled_is_refused_with_a_clear_reason_and_never_sent(integration, server):
    limit(integration, "integration", 2, 60)
    client = client_for(integration)
    client.get("/items")
    client.get("/items")
    with pytest.raises(RateLimitRefused) as refused:
        client.delete("/items/1")
    error = refused.value
    assert isinstance(error, OutboundError) and error.retryable
    assert error.level == "integration" and error.operation == "delete"
    assert "delete refused while throttled" in str(error)
    assert "the integration's provider limit of 2 per 60s is used up" in str(error)
    assert 0 < error.retry_after <= 62
    assert sent(server, "DELETE") == []


def test_fetch_over_a_long_wait_is_deferred_with_retry_after_not_dropped(integration, server):
    limit(integration, "operation", 1, 60, operation="fetch")
    client = client_for(integration)
    client.get("/items")
    with pytest.raises(RateLimitDeferred) as deferred:
        client.get("/items")
    assert deferred.value.retryable
    assert 55 < deferred.value.retry_after <= 62
    assert deferred.value.level == "operation"
    assert len(sent(server, "GET")) == 1
    # Creating is another operation: it still goes.
    client.post("/items", json={"name": "x"})
    assert len(sent(server, "POST")) == 1


def test_fetch_over_a_short_wait_waits_in_process_and_is_sent(integration, server):
    limit(integration, "integration", 2, 1)
    waited = metrics.GATE.labels("generic_rest", "fetch", "integration", "waited")
    before = waited._value.get()
    client = client_for(integration)
    for _ in range(3):
        assert client.get("/items").status_code == 200
    assert len(sent(server, "GET")) == 3
    assert waited._value.get() == before + 1  # the third one waited for room, then went


def test_a_cost_above_the_limit_is_rejected(integration):
    limit(integration, "integration", 5, 60)
    with pytest.raises(RateLimitExceedsCapacity) as rejected:
        client_for(integration).get("/items", cost=6)
    assert not rejected.value.retryable


def test_the_tenant_limit_is_shared_by_the_tenants_integrations(tenant, server):
    first = IntegrationFactory(tenant=tenant, config={"base_url": server.url})
    second = IntegrationFactory(tenant=tenant, config={"base_url": server.url})
    limit(first, "tenant", 3, 60)
    client_for(first).get("/items")
    client_for(first).get("/items")
    client_for(second).get("/items")
    with pytest.raises(RateLimitDeferred) as deferred:
        client_for(second).get("/items")
    assert deferred.value.level == "tenant"
    assert "the tenant's limit of 3 per 60s" in str(deferred.value)


def test_github_403_rate_limit_response_blocks_the_integration(integration, server):
    reset = int(time.time()) + 40
    server.route("GET", "/limited")(
        lambda r: (
            403,
            {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(reset),
                "x-ratelimit-resource": "core",
            },
            {"message": "API rate limit exceeded"},
        )
    )
    client = client_for(integration)
    with pytest.raises(RateLimitedError):
        client.get("/limited")
    with pytest.raises(RateLimitDeferred) as deferred:
        client.get("/items")
    assert "the provider asked us to stop" in str(deferred.value)
    assert 30 < deferred.value.retry_after <= 41
    with pytest.raises(RateLimitRefused):
        client.delete("/items/1")
    _policy, usage = usage_for(integration)
    assert usage.state.multiplier == 0.5
    assert usage.state.blocked_until is not None
    assert len(server.requests) == 1  # nothing was sent while blocked


def test_retry_after_http_date_on_429_blocks_until_that_date(integration, server):
    until = time.time() + 30
    server.route("GET", "/busy")(
        lambda r: (429, {"Retry-After": formatdate(until, usegmt=True)}, {"error": "slow down"})
    )
    client = client_for(integration)
    with pytest.raises(RateLimitedError):
        client.get("/busy")
    with pytest.raises(RateLimitDeferred) as deferred:
        client.get("/items")
    assert 25 < deferred.value.retry_after <= 31


def test_the_multiplier_recovers_once_the_provider_is_healthy(integration, server):
    server.route("GET", "/once")(lambda r: (429, {"Retry-After": "0"}, {}))
    client = client_for(integration)
    with pytest.raises(RateLimitedError):
        client.get("/once")
    assert usage_for(integration)[1].state.multiplier == 0.5
    for _ in range(5):
        client.get("/items")  # healthy answers, no rate-limit headers
    assert usage_for(integration)[1].state.multiplier == 1.0


def test_a_quota_running_low_is_spread_over_the_rest_of_its_window(integration, server):
    """IETF draft headers: 1 of 10 left, the window resets in 1 s. The next request waits
    half of that second — the one left lands inside the window — and the limit is whole."""
    headers = {"RateLimit-Limit": "10", "RateLimit-Remaining": "1", "RateLimit-Reset": "1"}
    server.route("GET", "/low-until-reset")(lambda r: (200, headers, []))
    client = client_for(integration)
    client.get("/low-until-reset")
    _policy, usage = usage_for(integration)
    assert usage.state.multiplier == 1.0
    assert usage.levels[1].effective_limit == usage.levels[1].limit.limit
    assert 0.3 < usage.state.blocked_until - usage.now <= 0.5
    started = time.monotonic()
    client.get("/items")
    assert 0.35 < time.monotonic() - started < 3
    # With plenty left there is no pause.
    headers["RateLimit-Remaining"] = "5"
    client.get("/low-until-reset")
    assert usage_for(integration)[1].state.blocked_until is None


def test_provider_running_low_reduces_the_effective_limit(integration, server):
    server.route("GET", "/low")(lambda r: (200, {"Sforce-Limit-Info": "api-usage=9500/10000"}, []))
    client = client_for(integration)
    client.get("/low")
    _policy, usage = usage_for(integration)
    integration_level = usage.levels[1]
    assert usage.state.multiplier == 0.25
    assert integration_level.effective_limit == integration_level.limit.limit // 4
