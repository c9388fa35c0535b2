"""Helpers to set up and drive syncs in tests (through the real scheduler and worker)."""

from __future__ import annotations

from integrations.models import Integration
from syncing.inbound import scheduler
from syncing.inbound.worker import run_claimed
from syncing.models import SyncRun, SyncTask
from syncing.records.stores import get_store
from syncing.records.stores.base import Scope

SANDBOX_CONFIG = {
    "records_path": "data",
    "updated_at_field": "updated_at",
    "since_param": "updated_since",
    "deleted_field": "deleted",
    "pagination": {"style": "cursor", "page_size": 20},
}


def make_integration(tenant, base_url: str, *, name: str = "Source", **config) -> Integration:
    return Integration.objects.create(
        tenant=tenant, provider="generic_rest", name=name, config={"base_url": base_url, **config}
    )


def sandbox_integration(tenant, sandbox_url: str, account: str, **overrides) -> Integration:
    config = {**SANDBOX_CONFIG, **overrides}
    return make_integration(tenant, f"{sandbox_url}/sandbox/{account}/", **config)


def make_task(integration, entity_type: str = "contacts", **fields) -> SyncTask:
    return SyncTask.objects.create(
        tenant=integration.tenant, integration=integration, entity_type=entity_type, **fields
    )


def run_once(task: SyncTask, enqueued) -> SyncRun | None:
    """Claim the task (as "run now" does) and execute the queued wake-up in this process."""
    scheduler.claim([task.id], trigger=SyncRun.Trigger.MANUAL)
    run = None
    for _path, args, _kind in enqueued.drain():
        run_claimed(*args)
        run = SyncRun.objects.filter(task=task).order_by("-started_at").first()
    return run


def sync_to_completion(task: SyncTask, enqueued, *, max_runs: int = 10) -> list[SyncRun]:
    """Run until a run succeeds or fails (deferred runs continue from their checkpoint)."""
    runs = []
    for _ in range(max_runs):
        run = run_once(task, enqueued)
        assert run is not None, "the task could not be claimed"
        runs.append(run)
        if run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED):
            return runs
        SyncTask.objects.filter(pk=task.pk).update(next_run_at=run.started_at)
    raise AssertionError(f"no final run after {max_runs}: {[r.status for r in runs]}")


def records_of(task: SyncTask, *, store=None, include_deleted: bool = False) -> dict[str, dict]:
    store = store or get_store()
    scope = Scope(task.tenant_id, task.integration_id, task.entity_type)
    return {r.external_id: r.data for r in store.iter_scope(scope, include_deleted=include_deleted)}
