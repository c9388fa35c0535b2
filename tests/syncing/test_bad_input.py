"""Bad input fails the run with a clear reason, never advances the cursor, loses nothing."""

from __future__ import annotations

import pytest

from syncing.inbound import scheduler
from syncing.inbound.worker import run_claimed
from syncing.models import SyncRun, SyncTask
from tests.syncing.helpers import make_integration, make_task, records_of, run_once

pytestmark = pytest.mark.django_db(transaction=True)


def contacts_route(server, total: int, *, broken_pages=()):
    """A provider with page-number pagination; pages in ``broken_pages`` answer HTML."""

    @server.route("GET", "/contacts")
    def contacts(request):
        page = int(request.query["page"][0])
        if page in broken_pages:
            return 200, {"Content-Type": "text/html"}, "<html><body>Maintenance</body></html>"
        start = (page - 1) * 10
        rows = [{"id": str(i), "n": i} for i in range(start + 1, min(start + 10, total) + 1)]
        return 200, {}, rows


@pytest.fixture
def provider(http_server):
    return http_server


def test_non_json_page_fails_the_run_keeps_the_checkpoint_and_resumes(
    tenant, provider, enqueued, fast_retries
):
    broken = {2}
    contacts_route(provider, 25, broken_pages=broken)
    task = make_task(
        make_integration(tenant, provider.url, pagination={"style": "page", "page_size": 10})
    )
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == "malformed_response"
    assert "non-JSON" in run.error_summary and "text/html" in run.error_summary
    assert run.retries == fast_retries.CASTIEL_SYNC_MAX_RETRIES
    task.refresh_from_db()
    assert task.status == SyncTask.Status.FAILED and "non-JSON" in task.status_reason
    assert task.checkpoint["cursor"] == {"page": 2}, "cursor stays at the last committed page"
    assert set(records_of(task)) == {str(i) for i in range(1, 11)}

    broken.clear()  # the provider recovers
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.trigger == "manual" and run.resumed_from is not None
    assert (run.pages, run.created) == (2, 15), "resumed from page 2, nothing re-created"
    assert set(records_of(task)) == {str(i) for i in range(1, 26)}


def _synced_task(tenant, provider, enqueued):
    contacts_route(provider, 5)
    task = make_task(
        make_integration(tenant, provider.url, pagination={"style": "page", "page_size": 10})
    )
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    task.refresh_from_db()
    return task


@pytest.mark.parametrize(
    "breakage,code,words",
    [
        ("disable_integration", "integration_disabled", "is disabled"),
        ("invalid_mapping", "invalid_mapping", "unknown transform"),
        ("invalid_cursor", "invalid_cursor", "cursor"),
        ("invalid_watermark", "invalid_cursor", "not a timestamp"),
        ("invalid_integration_config", "invalid_config", "pagination"),
    ],
)
def test_broken_configuration_fails_clearly_and_changes_nothing(
    tenant, provider, enqueued, breakage, code, words
):
    task = _synced_task(tenant, provider, enqueued)
    before = records_of(task)
    if breakage == "disable_integration":
        # Disabled after the claim (no claim takes a disabled integration's task): the
        # worker that was already woken fails the run with a clear reason.
        scheduler.claim([task.id], trigger=SyncRun.Trigger.MANUAL)
        task.integration.enabled = False
        task.integration.save()
    elif breakage == "invalid_mapping":
        SyncTask.objects.filter(pk=task.pk).update(
            field_mapping={"n": {"path": "n", "transform": "rot13"}}
        )
    elif breakage == "invalid_cursor":
        SyncTask.objects.filter(pk=task.pk).update(checkpoint={"cursor": {"page": "two"}})
    elif breakage == "invalid_watermark":
        SyncTask.objects.filter(pk=task.pk).update(state={"watermark": "yesterday"})
    else:
        task.integration.config["pagination"] = {"style": "carrier-pigeon"}
        task.integration.save()
    task.refresh_from_db()
    checkpoint, state = task.checkpoint, task.state

    run = run_claimed_now(task, enqueued) if breakage == "disable_integration" else None
    run = run or run_once(task, enqueued)

    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == code
    assert words in run.error_summary
    task.refresh_from_db()
    assert (task.checkpoint, task.state) == (checkpoint, state)
    assert task.lease_owner == "" and task.status == SyncTask.Status.FAILED
    assert records_of(task) == before


def run_claimed_now(task, enqueued):
    for _path, args, _kind in enqueued.drain():
        run_claimed(*args)
    return SyncRun.objects.filter(task=task).order_by("-started_at").first()
