"""Redis going away mid-run: decisions continue on local conservative limits, the outage
is visible (log, metric, /healthz), and the limiter returns to Redis by itself.

Uses a redis-server of its own (never the shared one) or a port where nothing listens.
"""

from __future__ import annotations

import time

import pytest
import redis
from django.test import override_settings

from ratelimit.backends.local import LocalBackend
from ratelimit.backends.redis import RedisBackend
from ratelimit.limiter import Limiter, get_limiter
from tests.ratelimit.conftest import new_id, policy, subject, unique_prefix
from tests.support.services import free_port

pytestmark = pytest.mark.redis


def limiter_for(url: str, *, processes=4, retry_seconds=0.2) -> Limiter:
    prefix = unique_prefix()
    return Limiter(
        RedisBackend(url, prefix=prefix, buckets=10, timeout=0.5),
        fallback=LocalBackend(prefix=prefix, buckets=10),
        processes=processes,
        retry_seconds=retry_seconds,
    )


def events(caplog, name: str) -> list[dict]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == name]


def scrape(client) -> str:
    return client.get("/metrics").content.decode()


def test_a_dead_port_answers_from_local_limits_shared_by_the_expected_processes(caplog):
    limiter = limiter_for(f"redis://127.0.0.1:{free_port()}/0", processes=4)
    tenant, integration = new_id(), new_id()
    pol = policy(integration=(20, 60))
    decisions = [limiter.acquire(subject(tenant, integration), pol) for _ in range(6)]
    # 20 shared by 4 expected processes: this process alone may send 5.
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert all(d.degraded for d in decisions)
    assert decisions[-1].wait > 0
    warnings = events(caplog, "ratelimit.degraded")
    assert len(warnings) == 1, "one warning per outage, not one per decision"
    assert limiter.check_health()[0] == "degraded"


def test_redis_stopped_mid_run_then_back(redis_server, caplog, client):
    limiter = limiter_for(redis_server.url, processes=2)
    tenant, integration = new_id(), new_id()
    pol = policy(integration=(10, 60))
    assert limiter.acquire(subject(tenant, integration), pol).degraded is False
    assert limiter.check_health() == ("ok", "redis")

    redis_server.stop()
    during = [limiter.acquire(subject(tenant, integration), pol) for _ in range(6)]
    assert all(d.degraded for d in during)
    assert [d.allowed for d in during] == [True] * 5 + [False]  # 10 / 2 processes locally
    assert events(caplog, "ratelimit.degraded")
    assert limiter.check_health()[0] == "degraded"

    redis_server.start()  # same port, empty
    time.sleep(0.3)  # past the retry interval
    back = limiter.acquire(subject(tenant, integration), pol)
    assert back.allowed and not back.degraded
    assert events(caplog, "ratelimit.recovered")
    assert limiter.check_health() == ("ok", "redis")
    stored = redis.Redis.from_url(redis_server.url)
    key = limiter.backend.keys.integration(tenant, integration)
    # Counted in Redis again, with the 5 this process sent during the outage copied there.
    assert sum(int(v) for v in stored.hgetall(key).values()) == 6
    assert events(caplog, "ratelimit.counts_copied")
    assert 0 < stored.pttl(key) <= 2 * 60_000
    # So the window that saw the outage admits only what is left of the real limit (10).
    more = [limiter.acquire(subject(tenant, integration), pol) for _ in range(5)]
    assert [d.allowed for d in more] == [True] * 4 + [False]
    assert not any(d.degraded for d in more)


def test_the_outage_shows_in_health_and_metrics(redis_server, detailed_client, db):
    client = detailed_client  # the check's detail needs the metrics token
    with override_settings(
        CASTIEL_RATELIMIT_BACKEND="redis",
        CASTIEL_RATELIMIT_REDIS_URL=redis_server.url,
        CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS=0.2,
    ):
        limiter = get_limiter()
        pol = policy()
        tenant, integration = new_id(), new_id()
        limiter.acquire(subject(tenant, integration), pol, provider="github")
        assert client.get("/healthz").json()["checks"]["ratelimit"]["status"] == "ok"
        assert "castiel_ratelimit_degraded 0.0" in scrape(client)

        redis_server.stop()
        decision = limiter.acquire(subject(tenant, integration), pol, provider="github")
        assert decision.allowed and decision.degraded
        check = client.get("/healthz").json()["checks"]["ratelimit"]
        assert check["status"] == "degraded"
        assert "unreachable" in check["detail"]
        metrics = scrape(client)
        assert "castiel_ratelimit_degraded 1.0" in metrics
        assert 'castiel_ratelimit_backend_errors_total{backend="redis"}' in metrics
        assert 'backend="degraded"' in metrics  # decisions counted under the fallback

        redis_server.start()
        time.sleep(0.3)
        assert not limiter.acquire(subject(tenant, integration), pol).degraded
        assert client.get("/healthz").json()["checks"]["ratelimit"]["status"] == "ok"
        assert "castiel_ratelimit_degraded 0.0" in scrape(client)
