"""The operator's day in a real browser (headless Chromium): log in, read the dashboard, run a
sync from the admin and see its run and records, preview a run, resolve a conflict field by
field, replay a dead letter. Everything runs against a live Castiel server whose built-in
sandbox is the provider; queued work runs inline in the server (django-q2's sync mode), so a
click goes all the way to the sandbox and back. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from sandbox import services as sandbox_services
from sandbox.models import SandboxObject
from syncing.models import Conflict, DeadLetter, OutboundChange, Record, RecordChange, SyncRun
from syncing.outbound import local_changes
from tests.syncing.helpers import make_task, run_once, sandbox_integration
from tests.syncing.outbound_support import sandbox_push_task
from tests.ui.browser import login, shot
from tests.ui.population import busy_day

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.embedded,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

PASSWORD = "pw-operator-browser-1"


@pytest.fixture
def inline_tasks(monkeypatch):
    """Queued work runs at once in the process that queues it (the live server's threads
    included): django-q2's sync mode, the same code path a worker would run."""
    from django_q.conf import Conf
    from django_q.signals import post_spawn

    from castiel.observability import heartbeat

    monkeypatch.setattr(Conf, "SYNC", True)
    # Sync mode still sends django-q2's post_spawn, which would start a worker heartbeat
    # thread in this test process (holding a database session past the test).
    post_spawn.disconnect(dispatch_uid="castiel-heartbeat")
    yield
    post_spawn.connect(heartbeat.on_worker_spawn, dispatch_uid="castiel-heartbeat")


@pytest.fixture
def signed_in(page, live_server, db):
    get_user_model().objects.create_superuser("operator", "ops@example.com", PASSWORD)
    login(page, live_server.url, "operator", PASSWORD)
    return page


def test_the_dashboard_draws_its_charts_and_refreshes_itself(
    signed_in, live_server, sandbox, tenant, enqueued, monkeypatch
):
    account = sandbox.account()
    sandbox.seed(account, 45)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug), name="Acme contacts")
    busy_day(tenant, task)
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED

    page = signed_in
    page.click("text=Operations dashboard")
    page.wait_for_selector("#panel-records svg")
    assert page.locator("svg.castiel-chart").count() == 8
    # The run just made is the current hour's bar; the earlier hours have theirs.
    current = '#panel-records rect[data-series="created"]'
    assert page.locator(current).last.get_attribute("data-value") == "45"
    assert page.locator("#panel-records rect.castiel-bar").count() > 24
    assert page.locator('#panel-runs rect[data-series="failed"]').count() >= 1
    assert page.locator('#panel-webhooks rect[data-series="accepted"]').count() >= 1
    billing = page.locator('#panel-ratelimits rect[data-series="Billing (Stripe)"]')
    assert float(billing.get_attribute("data-value")) == 20.0, "40 of 50 requests an hour"
    assert "invalid_grant" in page.inner_text("#panel-credentials")
    assert page.inner_text("#panel-deadletters .castiel-figure").startswith("3 open")
    assert not page.js_errors, page.js_errors
    shot(page, "dashboard")

    # New data shows up without a reload: the panels are polled and re-rendered.
    monkeypatch.setattr("console.dashboard.views.REFRESH_SECONDS", 1)
    page.reload()
    sandbox_services.object_create(account=account, collection="contacts", data={"email": "n@x"})
    assert run_once(task, enqueued).created == 1
    page.wait_for_function(
        f"document.querySelectorAll('{current}')[document.querySelectorAll('{current}').length"
        " - 1].dataset.value === '46'",
        timeout=10_000,
    )
    assert int(page.get_attribute("#castiel-dashboard-panels", "data-polls")) >= 1
    assert not page.js_errors, page.js_errors


def test_run_a_sync_from_the_admin_then_see_the_run_the_records_and_a_dry_run(
    signed_in, live_server, sandbox, tenant, inline_tasks
):
    account = sandbox.account()
    sandbox.seed(account, 30)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug), name="Acme contacts")
    page = signed_in

    page.goto(f"{live_server.url}/admin/syncing/synctask/")
    page.check(f'input[name="_selected_action"][value="{task.pk}"]')
    page.select_option('select[name="action"]', "run_now")
    page.click('button[name="index"]')
    page.wait_for_selector(".messagelist")
    assert "1 task queued to run now" in page.inner_text(".messagelist")

    run = SyncRun.objects.get(task=task)
    assert (run.status, run.created) == ("succeeded", 30), run.error_summary
    page.goto(f"{live_server.url}/admin/syncing/synctask/{task.pk}/change/")
    page.click("ul.object-tools >> text=Runs")
    row = page.locator("#result_list tbody tr").first
    assert "Succeeded" in row.inner_text() and "30" in row.inner_text()
    shot(page, "runs")
    row.locator("th a").click()
    page.wait_for_selector("text=What it changed")
    shot(page, "run-detail")

    page.goto(f"{live_server.url}/admin/syncing/synctask/{task.pk}/change/")
    page.click("ul.object-tools >> text=Records")
    # The whole list page, paginator included (read while it still loads, it was cut short).
    page.wait_for_url("**/admin/syncing/record/**")
    page.wait_for_load_state()
    assert re.search(r"30 records", page.inner_text("#changelist-form"))
    first = SandboxObject.objects.filter(account=account).order_by("id").first()
    page.fill("#searchbar", str(first.pk))
    page.press("#searchbar", "Enter")
    page.locator("#result_list tbody tr th a").first.click()
    history = page.locator("#record-history")
    assert "Sync run" in history.inner_text() and "created" in history.inner_text()
    shot(page, "record")

    # A change at the provider, previewed before any run takes it.
    sandbox_services.object_update(obj=first, data={"email": "ada@new.example"})
    page.goto(f"{live_server.url}/admin/syncing/synctask/{task.pk}/change/")
    page.click("ul.object-tools >> text=Dry run")
    page.click("#run-preview")
    page.wait_for_selector("#preview-items")
    assert page.inner_text('#preview-counts td[data-count="updated"]') == "1"
    assert "ada@new.example" in page.inner_text("#preview-items")
    assert Record.objects.get(external_id=str(first.pk)).data["email"] != "ada@new.example"
    shot(page, "dry-run")
    assert not page.js_errors, page.js_errors


def test_resolve_a_conflict_field_by_field(
    signed_in, live_server, sandbox, tenant, enqueued, inline_tasks
):
    account = sandbox.account()
    sandbox.seed(account, 3)
    task = sandbox_push_task(tenant, sandbox, account, push_conflict_strategy="manual")
    run_once(task, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = Record.objects.get(external_id=str(target.pk))
    # Both sides change the same contact: the company on both, the email only at the
    # provider, the phone only here. The push finds the remote moved and, as the task asks
    # for manual review, holds the local change and opens a conflict.
    sandbox_services.object_update(
        obj=target, data={"company": "Theirs Inc", "email": "ada@theirs.example"}
    )
    local_changes.record_update(
        tenant_id=tenant.id,
        record_id=record.pk,
        data={"company": "Ours Ltd", "phone": "+14155550100"},
    )
    conflict = Conflict.objects.get()
    assert OutboundChange.objects.get(record_id=record.pk).status == "conflict"

    page = signed_in
    page.goto(f"{live_server.url}/admin/syncing/conflict/")
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_selector("#conflict-diff")
    company = page.locator('#conflict-diff tr[data-field="company"]')
    assert "both changed" in company.inner_text()
    # One-sided edits are pre-selected; the field changed on both sides needs a choice.
    assert page.locator('tr[data-field="phone"] input[value="local"]').is_checked()
    assert page.locator('tr[data-field="email"] input[value="remote"]').is_checked()
    shot(page, "conflict")
    company.locator('input[value="local"]').check()
    page.click("#resolve-chosen")
    page.wait_for_selector(".messagelist")
    assert "resolved (merged)" in page.inner_text(".messagelist")
    assert page.inner_text("#conflict-status") == "resolved"
    shot(page, "conflict-resolved")

    conflict.refresh_from_db()
    data = Record.objects.get(pk=record.pk).data
    assert (conflict.resolution, data["company"], data["phone"], data["email"]) == (
        "merged",
        "Ours Ltd",
        "+14155550100",
        "ada@theirs.example",
    )
    # The merged record went out to the provider (pushed inline by the live server).
    target.refresh_from_db()
    assert (target.data["company"], target.data["phone"]) == ("Ours Ltd", "+14155550100")


def test_replay_a_dead_letter_after_fixing_the_record(
    signed_in, live_server, sandbox, tenant, enqueued, inline_tasks
):
    account = sandbox.account()
    sandbox.seed(account, 3)
    task = sandbox_push_task(tenant, sandbox, account)
    run_once(task, enqueued)
    target = SandboxObject.objects.filter(account=account).order_by("id").first()
    record = Record.objects.get(external_id=str(target.pk))
    # The provider refuses an email without "@" (422): a dead letter at once.
    local_changes.record_update(tenant_id=tenant.id, record_id=record.pk, data={"email": "nope"})
    letter = DeadLetter.objects.get()
    assert (letter.error_code, letter.response_status) == ("http_422", 422)
    # Fixed locally; the fix waits behind the dead change (order per record).
    local_changes.record_update(
        tenant_id=tenant.id, record_id=record.pk, data={"email": "fixed@example.com"}
    )
    assert target.data["email"] != "fixed@example.com"

    page = signed_in
    page.goto(f"{live_server.url}/admin/syncing/deadletter/")
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_selector("#replay")
    assert "must be an email address" in page.inner_text("#content")
    shot(page, "dead-letter")
    page.click("#replay")
    page.wait_for_selector(".messagelist")
    assert "1 dead letter replayed" in page.inner_text(".messagelist")
    assert page.locator("#replay").count() == 0

    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by) == ("replayed", "admin:operator")
    target.refresh_from_db()
    assert target.data["email"] == "fixed@example.com"
    assert set(
        OutboundChange.objects.filter(record_id=record.pk).values_list("status", flat=True)
    ) == {"succeeded"}
    assert RecordChange.objects.filter(record_id=record.pk, source="api").count() == 0
