"""Backend properties the behaviour tests do not show: one round trip per decision on Redis,
and the database backend's clean-up of idle rows."""

from __future__ import annotations

import pytest
import redis

from ratelimit.backends.database import DatabaseBackend
from ratelimit.backends.redis import RedisBackend
from ratelimit.models import LimiterCounter
from ratelimit.tasks import delete_expired_counters
from tests.ratelimit.conftest import new_id, policy, subject, unique_prefix


@pytest.mark.redis
def test_a_redis_decision_is_one_round_trip(redis_url, monkeypatch):
    backend = RedisBackend(redis_url, prefix=unique_prefix(), buckets=10)
    tenant, integration = new_id(), new_id()
    pol = policy(integration=(3, 60))
    backend.acquire(subject(tenant, integration), pol)  # the script is loaded by now
    sent = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    decisions = [
        backend.acquire(subject(tenant, integration, op), pol)
        for op in ("fetch", "update", "delete")
    ]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert len(sent) == 3, "one command per decision, admitted or refused"
    assert all(
        b"EVALSHA" in b"".join(part if isinstance(part, bytes) else bytes(part) for part in c)
        for c in sent
    )


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_database_backend_cleans_up_idle_rows(settings, monkeypatch):
    settings.CASTIEL_RATELIMIT_BACKEND = "database"
    clock = {"ms": 1_700_000_000_000}
    backend = DatabaseBackend(prefix=unique_prefix(), buckets=10, clock=lambda: clock["ms"])
    backend.acquire(subject(new_id(), new_id()), policy(integration=(5, 60)))
    assert LimiterCounter.objects.count() >= 3
    monkeypatch.setattr(
        "ratelimit.tasks.get_limiter", lambda: type("L", (), {"backend": backend})()
    )
    clock["ms"] += 10 * 60 * 1000  # well past twice every window
    assert delete_expired_counters() >= 3
    assert not LimiterCounter.objects.filter(key__startswith=backend.keys.prefix).exists()
