"""Scaling signals: backlog and oldest age per work kind from the database, a recommended
instance count within the configured bounds, workers alive per cluster, all at /metrics."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from castiel.observability import heartbeat, scaling
from castiel.tenancy import services as tenancy
from syncing.models import OutboundChange, SyncTask
from tests.factories import make_integration
from tests.webhooks.factories import make_event, make_registration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def _recommended(kind, waiting, oldest, alive):
    return scaling.recommended(kind, scaling.Backlog(waiting, oldest), alive)


def test_recommended_instances_follow_the_backlog_within_the_bounds(settings):
    settings.CASTIEL_SCALING = {
        **settings.CASTIEL_SCALING,
        "inbound": {"min": 1, "max": 10, "per_instance": 5, "max_age_seconds": 300},
    }
    assert _recommended("inbound", 0, 0, 0) == 1  # never below min
    assert _recommended("inbound", 11, 10, 1) == 3  # ceil(11 / 5)
    assert _recommended("inbound", 1000, 10, 1) == 10  # never above max
    # Old work with enough instances on paper: one more than are alive.
    assert _recommended("inbound", 4, 600, 3) == 4
    assert _recommended("inbound", 4, 600, 10) == 10
    assert _recommended("maintenance", 0, 0, 0) == 1
    assert _recommended("maintenance", 10**6, 10**6, 5) == 1  # the scheduler stays alone


def test_backlog_and_age_are_read_from_the_database(tenant):
    now = timezone.now()
    integration = make_integration(tenant)
    SyncTask.objects.create(
        tenant=tenant,
        integration=integration,
        entity_type="contacts",
        status="queued",
        queued_at=now - timedelta(seconds=400),
    )
    SyncTask.objects.create(tenant=tenant, integration=integration, entity_type="deals")
    for age, status in ((200, "pending"), (30, "queued"), (10, "succeeded")):
        OutboundChange.objects.create(
            tenant=tenant,
            integration=integration,
            entity_type="contacts",
            record_id=uuid.uuid4(),
            operation="update",
            seq=1,
            status=status,
            next_attempt_at=now - timedelta(seconds=age),
        )
    OutboundChange.objects.create(  # due later: not waiting yet
        tenant=tenant,
        integration=integration,
        entity_type="contacts",
        record_id=uuid.uuid4(),
        operation="update",
        seq=1,
        next_attempt_at=now + timedelta(seconds=60),
    )
    registration = make_registration(tenant)
    make_event(registration, status="received", received_at=now - timedelta(seconds=90))
    make_event(registration, status="retrying", next_attempt_at=now - timedelta(seconds=5))
    make_event(registration, status="retrying", next_attempt_at=now + timedelta(seconds=600))
    make_event(registration, status="processed")
    # A switched-off tenant's work waits on purpose: not a backlog.
    idle = tenancy.tenant_create(name="Switched off")
    idle.is_active = False
    idle.save()
    make_event(make_registration(idle), status="received", received_at=now - timedelta(hours=1))

    signals = scaling.signals(now)
    assert {k: (v["backlog"], round(v["oldest_seconds"])) for k, v in signals.items()} == {
        "inbound": (1, 400),
        "outbound": (2, 200),
        "webhooks": (2, 90),
        "maintenance": (0, 0),
    }
    assert signals["inbound"]["instances"] == 0
    # 400 s > inbound's 300 s limit with no live instance: one more than alive (1).
    assert signals["inbound"]["recommended"] == 1


def test_metrics_show_the_signals_and_the_workers_alive(client, tenant, settings):
    settings.CASTIEL_METRICS_TOKEN = ""
    heartbeat.beat(settings.Q_CLUSTER["name"])
    body = client.get("/metrics").content.decode()
    cluster = settings.Q_CLUSTER["name"]
    assert f'castiel_workers_alive{{cluster="{cluster}"}} 1.0' in body
    for kind in settings.WORK_KINDS:
        for family in ("backlog", "oldest_seconds", "instances", "recommended_instances"):
            assert f'castiel_scaling_{family}{{kind="{kind}"}}' in body
    assert 'castiel_scaling_instances{kind="inbound"} 1.0' in body
