"""Events raised where the fact happens: credentials, the rate limiter, workers."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from castiel.events import Kind
from credentials import maintenance, refresh
from credentials.errors import GrantError
from credentials.models import Credential, CredentialStatus
from notifications.models import Incident
from ratelimit.backends.base import Adjustment
from ratelimit.limiter import Limiter
from tests.credentials.factories import make_credential

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def live(kind):
    return Incident.objects.filter(kind=str(kind), state__in=Incident.LIVE)


def test_reauth_required_opens_an_incident_and_a_reconnect_resolves_it(tenant, committed):
    credential = make_credential(tenant)
    committed(
        lambda: refresh._record_failure(
            credential,
            "schedule",
            GrantError("invalid_grant", "revoked", transient=False),
            1,
            time.monotonic(),
            "c",
        )
    )
    (incident,) = live(Kind.CREDENTIAL_REAUTH_REQUIRED)
    assert incident.tenant_id == tenant.pk
    assert incident.subject_type == "integration"
    assert incident.subject_id == str(credential.integration_id)
    assert "connect the integration again" in incident.message
    # Connecting again makes a new credential for the same integration.
    Credential.objects.filter(pk=credential.pk).update(status=CredentialStatus.REVOKED)
    from credentials import services

    committed(
        lambda: services.credential_create(
            integration=credential.integration, type="api_key", secret={"api_key": "k-2"}
        )
    )
    assert not live(Kind.CREDENTIAL_REAUTH_REQUIRED).exists()


def test_refresh_failing_opens_past_the_threshold(tenant, committed, settings):
    settings.CASTIEL_NOTIFY_REFRESH_FAILURES = 3
    credential = make_credential(tenant)
    error = GrantError("server_error", "HTTP 500", transient=False)
    for _ in range(2):
        committed(lambda: refresh._record_failure(credential, "schedule", error, 1, 0.0, "c"))
    assert not live(Kind.CREDENTIAL_REFRESH_FAILING).exists()
    committed(lambda: refresh._record_failure(credential, "schedule", error, 1, 0.0, "c"))
    (incident,) = live(Kind.CREDENTIAL_REFRESH_FAILING)
    assert incident.details == {"failures": 3}


def test_a_credential_turning_expiring_raises_an_event(tenant, committed):
    credential = make_credential(tenant)
    Credential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() + timedelta(days=3)
    )
    committed(maintenance.mark_expiring)
    (incident,) = live(Kind.CREDENTIAL_EXPIRING)
    assert incident.message.startswith("The credential expires at")
    committed(maintenance.mark_expiring)  # already flagged: no second event
    assert Incident.objects.get().occurrences == 1


class _Backend:
    name = "redis"

    def __init__(self):
        self.up = True
        self.blocked = None

    def acquire(self, subject, policy, cost):
        from ratelimit.backends.base import BackendUnavailable, Decision

        if not self.up:
            raise BackendUnavailable("connection refused")
        return Decision(allowed=True)

    def adjust(self, tenant_id, integration_id, adjustment, ttl):
        from ratelimit.backends.base import AdaptiveState

        return AdaptiveState(0.5, time.time() + adjustment.block if adjustment.block else None)

    def ping(self):
        from ratelimit.backends.base import BackendUnavailable

        if not self.up:
            raise BackendUnavailable("connection refused")


def test_the_limiter_losing_redis_is_a_platform_incident_resolved_on_return(committed):
    from ratelimit.backends.local import LocalBackend
    from ratelimit.policy import Limit, Policy, Subject

    backend = _Backend()
    limiter = Limiter(backend, fallback=LocalBackend(prefix="t", buckets=2), retry_seconds=0)
    policy = Policy(
        tenant=Limit(10, 60), integration=Limit(10, 60), default_operation=Limit(10, 60)
    )
    subject = Subject("t", "i", "fetch")
    backend.up = False
    committed(lambda: limiter.acquire(subject, policy))
    (incident,) = live(Kind.LIMITER_DEGRADED)
    assert incident.tenant_id is None and incident.subject_id == "redis"
    backend.up = True
    committed(limiter.check_health)
    assert not live(Kind.LIMITER_DEGRADED).exists()


def test_a_long_provider_block_is_an_exhausted_quota_until_a_request_goes_through(
    tenant, committed, settings
):
    settings.CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS = 60
    limiter = Limiter(_Backend())
    integration = "6f2b7f3c-6f5e-4b8e-9d1e-0c2f6d1a9b11"
    committed(lambda: limiter.adjust(str(tenant.pk), integration, Adjustment(block=5)))
    assert not live(Kind.QUOTA_EXHAUSTED).exists()  # a short Retry-After is normal life
    committed(lambda: limiter.adjust(str(tenant.pk), integration, Adjustment(block=3600)))
    (incident,) = live(Kind.QUOTA_EXHAUSTED)
    assert incident.details == {"blocked_for_s": 3600.0}
    committed(lambda: limiter.adjust(str(tenant.pk), integration, Adjustment(step=0.1)))
    assert not live(Kind.QUOTA_EXHAUSTED).exists()
    assert Incident.objects.get().resolved_by == "recovery: ratelimit.quota_restored"


def test_a_worker_kind_without_a_live_worker_is_a_platform_incident(committed, settings):
    from castiel.observability import heartbeat
    from castiel.observability.models import WorkerHeartbeat

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"inbound": {}, "outbound": {}}}
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        cluster="inbound", host="h", pid=1, started_at=now, last_seen=now
    )
    young = now - timedelta(seconds=10)
    assert committed(lambda: heartbeat.watch_clusters(since=young)) == []  # still starting
    old = now - timedelta(minutes=5)
    assert committed(lambda: heartbeat.watch_clusters(since=old)) == ["outbound"]
    (incident,) = live(Kind.WORKER_KIND_DOWN)
    assert incident.subject_id == "outbound" and incident.severity == 40
    WorkerHeartbeat.objects.create(
        cluster="outbound", host="h", pid=2, started_at=now, last_seen=now
    )
    assert committed(lambda: heartbeat.watch_clusters(since=old)) == []
    assert not live(Kind.WORKER_KIND_DOWN).exists()
