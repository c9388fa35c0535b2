"""End-to-end pulls from the sandbox (served over real HTTP) into the record store."""

from __future__ import annotations

import pytest

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import SyncRun
from tests.syncing.helpers import make_task, records_of, run_once, sandbox_integration

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def test_full_pull_then_incremental_changes_land_exactly(tenant, sandbox, enqueued, record_store):
    account = sandbox.account()
    sandbox.seed(account, 45)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, run.fetched, run.created) == (3, 45, 45)
    assert records_of(task, store=record_store) == sandbox.expected(account)
    task.refresh_from_db()
    assert task.checkpoint == {} and task.state["watermark"]

    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    sandbox_services.object_update(obj=objs[3], data={"email": "changed@example.com"})
    sandbox_services.object_delete(obj=objs[7])
    sandbox_services.object_create(account=account, collection="contacts", data={"email": "n@x"})

    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.created, run.updated, run.deleted) == (1, 1, 1)
    assert run.fetched < 10, "an incremental run only reads what changed"
    assert records_of(task, store=record_store) == sandbox.expected(account)
    assert str(objs[7].pk) in records_of(task, store=record_store, include_deleted=True)
