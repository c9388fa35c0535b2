"""Operations dashboard page vs a plain admin list, over a busy site's data.

Data (PostgreSQL scratch database): 5 tenants, 50 integrations with a sync task each,
``--runs`` sync runs spread over the last 48 hours (a tenth failed), ``--records`` records,
20,000 webhook deliveries (a tenth rejected), 1,000 outbound changes with 500 dead letters,
500 credentials. Castiel: ``GET /admin/dashboard/`` (every panel: seven aggregate queries over
indexed ranges, queue depths, a limiter read for up to 12 integrations, SVG rendering).
Baseline: ``GET /admin/syncing/syncrun/`` — Django's own changelist of the same runs (100 rows,
filters, date hierarchy) — the cheapest page an operator would open instead. Both through
Django's test client in this process, alternating, the median of ``--requests`` each.
The ratio is the baseline's time over the dashboard's (above 1: the dashboard is cheaper).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import timedelta

from bench._syncdb import scratch_postgres


def add_arguments(parser):
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=15)


def run(args) -> dict:
    with scratch_postgres():
        return _measure(args)


def _seed(args) -> None:
    from django.utils import timezone

    from castiel.tenancy.services import tenant_create
    from credentials.models import Credential
    from integrations.models import Integration
    from syncing.models import DeadLetter, OutboundChange, Record, SyncRun, SyncTask
    from syncing.records.hashing import content_hash
    from webhooks.models import WebhookEvent, WebhookRegistration

    rng = random.Random(7)
    now = timezone.now()
    tenants = [tenant_create(name=f"Bench {n}") for n in range(5)]
    integrations, tasks = [], []
    for n in range(50):
        tenant = tenants[n % 5]
        integration = Integration.objects.create(
            tenant=tenant,
            provider="generic_rest",
            name=f"Source {n}",
            config={"base_url": "http://x/"},
        )
        integrations.append(integration)
        tasks.append(
            SyncTask.objects.create(
                tenant=tenant, integration=integration, entity_type="contacts", last_run_at=now
            )
        )
    runs = []
    for _ in range(args.runs):
        task = rng.choice(tasks)
        failed = rng.random() < 0.1
        started = now - timedelta(seconds=rng.uniform(0, 48 * 3600))
        runs.append(
            SyncRun(
                tenant_id=task.tenant_id,
                task=task,
                mode="incremental",
                status="failed" if failed else "succeeded",
                started_at=started,
                finished_at=started + timedelta(seconds=3),
                pages=3,
                fetched=250,
                created=rng.randint(0, 50),
                updated=rng.randint(0, 200),
                deleted=rng.randint(0, 5),
                error_code="http_503" if failed else "",
            )
        )
    SyncRun.objects.bulk_create(runs, batch_size=2000)
    batch = []
    for n in range(args.records):
        integration = integrations[n % 50]
        data = {"id": str(n), "email": f"c{n}@example.com", "name": f"Contact {n}"}
        digest = content_hash(data)
        batch.append(
            Record(
                id=uuid.uuid4(),
                tenant_id=integration.tenant_id,
                integration=integration,
                entity_type="contacts",
                external_id=str(n),
                data=data,
                content_hash=digest,
                base_data=data,
                base_hash=digest,
            )
        )
        if len(batch) == 5000:
            Record.objects.bulk_create(batch)
            batch = []
    Record.objects.bulk_create(batch)
    registrations = [
        WebhookRegistration.objects.create(
            tenant=t, name="hooks", scheme="github", secret_name=f"webhook-{t.pk.hex}"
        )
        for t in tenants
    ]
    events = []
    for n in range(20_000):
        registration = registrations[n % 5]
        rejected = rng.random() < 0.1
        events.append(
            WebhookEvent(
                tenant_id=registration.tenant_id,
                registration=registration,
                outcome="rejected" if rejected else "accepted",
                reason="bad_signature" if rejected else "ok",
                http_status=401 if rejected else 202,
                status="" if rejected else "processed",
                dedupe_key=f"k{n}",
                method="POST",
                headers={},
                received_at=now - timedelta(seconds=rng.uniform(0, 24 * 3600)),
            )
        )
    WebhookEvent.objects.bulk_create(events, batch_size=2000)
    changes = []
    for n in range(1000):
        integration = integrations[n % 50]
        changes.append(
            OutboundChange(
                tenant_id=integration.tenant_id,
                integration=integration,
                entity_type="contacts",
                record_id=uuid.uuid4(),
                operation="update",
                seq=1,
                status="dead" if n % 2 else "pending",
            )
        )
    OutboundChange.objects.bulk_create(changes)
    DeadLetter.objects.bulk_create(
        [
            DeadLetter(
                tenant_id=c.tenant_id,
                change=c,
                integration_id=c.integration_id,
                entity_type="contacts",
                record_id=c.record_id,
                operation="update",
                error_code="http_422",
                error_message="invalid",
                created_at=now - timedelta(seconds=rng.uniform(0, 24 * 3600)),
            )
            for c in changes
            if c.status == "dead"
        ]
    )
    Credential.objects.bulk_create(
        [
            Credential(
                tenant_id=integrations[n % 50].tenant_id,
                integration=integrations[n % 50],
                type="api_key",
                status=rng.choice(["active", "active", "active", "expiring", "revoked"]),
                secret_name=f"cred-{n}",
                secret_fields=["api_key"],
            )
            for n in range(500)
        ],
        ignore_conflicts=True,
    )


def _measure(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's template hooks, ALLOWED_HOSTS = testserver
    started = time.perf_counter()
    _seed(args)
    seeded = time.perf_counter() - started
    user = get_user_model().objects.create_superuser("bench", "b@example.com", "bench-pw-1")
    client = Client()
    client.force_login(user)

    def timed(url: str) -> float:
        begin = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - begin
        assert response.status_code == 200, (url, response.status_code)
        return elapsed

    dashboard_url, baseline_url = "/admin/dashboard/", "/admin/syncing/syncrun/"
    timed(dashboard_url), timed(baseline_url)  # warm up (templates, connections)
    dashboard, baseline = [], []
    for _ in range(args.requests):
        dashboard.append(timed(dashboard_url))
        baseline.append(timed(baseline_url))
    value, base = statistics.median(dashboard) * 1000, statistics.median(baseline) * 1000
    fragment = statistics.median(timed(dashboard_url + "?fragment=1") for _ in range(5)) * 1000
    return {
        "value": round(value, 1),
        "baseline": round(base, 1),
        "unit": "ms per page (median)",
        "ratio": round(base / value, 3),
        "fragment_ms": round(fragment, 1),
        "dashboard_max_ms": round(max(dashboard) * 1000, 1),
        "runs": args.runs,
        "records": args.records,
        "seed_seconds": round(seeded, 1),
    }
