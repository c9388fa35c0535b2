"""Scheduler tick over 10,000 due tasks (fair claim + lease + enqueue) vs bare SKIP LOCKED claims.

Castiel: ``syncing.inbound.scheduler.tick()`` — tenant-fair ranking, ``FOR UPDATE SKIP LOCKED``,
lease written, one django-q2 message per task sent after each batch commits (Redis broker if
``REDIS_URL`` is set, else the ORM broker; our queue is purged afterwards). Baseline: the
same batches as a bare ``SELECT id … ORDER BY priority, next_run_at LIMIT 100 FOR UPDATE
SKIP LOCKED`` + ``UPDATE`` of those rows, nothing enqueued. Both on the same rows of a
scratch PostgreSQL database. Durations: ``ratio`` = baseline seconds / Castiel seconds
(higher is better, 1.0 = no overhead).
"""

from __future__ import annotations

import os
import time

from bench._syncdb import scratch_postgres


def add_arguments(parser):
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)


def run(args) -> dict:
    env = {}
    if os.environ.get("REDIS_URL"):
        env["CASTIEL_BROKER"] = "redis"
    with scratch_postgres(**env):
        return _measure(args.tasks, args.tenants, args.batch_size)


def _measure(total: int, tenant_count: int, batch_size: int) -> dict:
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone
    from django_q.brokers import get_broker

    from castiel.tenancy.services import tenant_create
    from integrations.models import Integration
    from syncing.inbound import scheduler
    from syncing.models import SyncTask

    due = timezone.now() - timedelta(minutes=1)
    for t in range(tenant_count):
        tenant = tenant_create(name=f"Bench {t}")
        integration = Integration.objects.create(
            tenant=tenant, provider="generic_rest", name="src", config={"base_url": "http://x/"}
        )
        SyncTask.objects.bulk_create(
            [
                SyncTask(
                    tenant=tenant,
                    integration=integration,
                    entity_type=f"e{i}",
                    priority=i % 3,
                    next_run_at=due,
                )
                for i in range(total // tenant_count)
            ],
            batch_size=2000,
        )
    total = SyncTask.objects.count()

    def reset():
        SyncTask.objects.update(lease_owner="", status="idle", lease_expires_at=None)

    # Baseline: bare claims.
    started = time.perf_counter()
    claimed_bare = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM syncing_synctask WHERE enabled AND next_run_at <= now() "
                "AND lease_owner = '' ORDER BY priority DESC, next_run_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED",
                [batch_size],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                break
            cursor.execute(
                "UPDATE syncing_synctask SET lease_owner = 'bare', status = 'queued' "
                "WHERE id = ANY(%s)",
                [ids],
            )
            claimed_bare += len(ids)
    bare_seconds = time.perf_counter() - started
    assert claimed_bare == total
    reset()

    # Where the time goes: the same tick with the broker send switched off.
    from unittest import mock

    with mock.patch.object(scheduler, "enqueue_many", lambda *a, **k: None):
        started = time.perf_counter()
        scheduler.tick(batch_size=batch_size, max_batches=total // batch_size + 10)
        claim_only_seconds = time.perf_counter() - started
    reset()

    broker = get_broker(settings.Q_CLUSTER["name"])
    started = time.perf_counter()
    claimed = scheduler.tick(batch_size=batch_size, max_batches=total // batch_size + 10)
    castiel_seconds = time.perf_counter() - started
    queued = broker.queue_size()
    broker.purge_queue()
    assert claimed == total, claimed
    return {
        "value": round(castiel_seconds, 3),
        "baseline": round(bare_seconds, 3),
        "unit": "seconds (ratio = baseline / Castiel)",
        "ratio": round(bare_seconds / castiel_seconds, 3),
        "tasks": total,
        "tenants": tenant_count,
        "batch_size": batch_size,
        "enqueued": queued,
        "claim_only_seconds": round(claim_only_seconds, 3),
        "broker": settings.CASTIEL_BROKER,
        "goal_met": castiel_seconds <= 1.0,
    }
