"""The operations dashboard: the figures are right, the charts carry them, the page refreshes
itself, it is cheap (a fixed number of queries whatever the data), and only operators see it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from castiel.queue import all_clusters
from console.dashboard.selectors import HOURS, hour_buckets
from credentials.models import Credential
from ratelimit.models import RateLimitOverride
from ratelimit.services import acquire
from syncing.models import Conflict, DeadLetter, OutboundChange, SyncRun
from tests.credentials.factories import make_credential
from tests.syncing.factories import make_conflict, make_dead_letter, make_outbound_change
from tests.syncing.pipeline_support import task_with
from tests.webhooks.factories import make_event, make_registration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

DATA = "/admin/dashboard/data/"
PAGE = "/admin/dashboard/"


def run(task, at, status="succeeded", **counts):
    return SyncRun.objects.create(
        tenant_id=task.tenant_id, task=task, mode=task.mode, status=status, started_at=at, **counts
    )


@pytest.fixture
def busy(tenant):
    """A day of activity for ``tenant``: runs, webhooks, dead letters, credentials, limits."""
    now = timezone.now()
    buckets = hour_buckets(now)
    task = task_with(tenant)
    run(task, buckets[-1] + timedelta(seconds=1), created=5, updated=2, deleted=1)
    run(task, buckets[-1] + timedelta(seconds=2), status="failed", error_code="http_500")
    run(task, buckets[-3] + timedelta(minutes=5), created=7)
    run(task, buckets[0] - timedelta(hours=1), created=1000)  # older than the window
    registration = make_registration(tenant, integration=task.integration)
    for outcome, n in (("accepted", 4), ("duplicate", 1), ("rejected", 3)):
        for _ in range(n):
            make_event(
                registration,
                outcome=outcome,
                reason="bad_signature" if outcome == "rejected" else "ok",
                http_status=401 if outcome == "rejected" else 200,
                received_at=buckets[-2] + timedelta(minutes=1),
            )
    letter = make_dead_letter(tenant)
    make_dead_letter(tenant)
    DeadLetter.objects.filter(pk=letter.pk).update(status="replayed")
    reauth = make_credential(tenant)
    Credential.objects.filter(pk=reauth.pk).update(
        status="reauth_required", status_reason="invalid_grant: token revoked"
    )
    make_credential(tenant)  # active
    make_conflict(tenant)
    make_outbound_change(tenant)
    # 8 of a 10-per-minute integration limit used: 20 % headroom left.
    RateLimitOverride.objects.create(
        tenant=tenant,
        integration=task.integration,
        level="integration",
        limit=10,
        window_seconds=60,
    )
    task.integration.refresh_from_db()
    for _ in range(8):
        assert acquire(tenant, task.integration, "fetch").allowed
    return {"buckets": buckets, "task": task}


def test_the_figures_of_the_last_24_hours(operator, tenant, busy):
    data = operator.get(DATA).json()
    records = data["records_per_hour"]
    assert len(records["hours"]) == HOURS
    assert records["values"]["created"][-1] == 5 and records["values"]["created"][-3] == 7
    assert (records["values"]["updated"][-1], records["values"]["deleted"][-1]) == (2, 1)
    assert sum(records["values"]["created"]) == 12, "the run before the window is not counted"
    runs = data["runs_per_hour"]["values"]
    assert (runs["succeeded"][-1], runs["failed"][-1], sum(runs["succeeded"])) == (1, 1, 2)
    assert [f["error_code"] for f in data["recent_failures"]] == ["http_500"]

    hooks = data["webhooks_per_hour"]["values"]
    assert (hooks["accepted"][-2], hooks["duplicate"][-2], hooks["rejected"][-2]) == (4, 1, 3)
    assert data["webhook_reject_reasons"] == {"bad_signature": 3}

    assert data["dead_letters"]["open"] == 1
    assert [row[2] for row in data["dead_letters"]["by_integration"]] == [1]
    assert data["open_conflicts"] == 1
    assert data["queues"]["outbound_pending"] == 1
    assert set(data["queues"]["clusters"]) == set(all_clusters())

    assert data["credential_statuses"] == {"reauth_required": 1, "active": 1}
    [attention] = data["credentials_needing_attention"]
    assert (attention["status"], attention["reason"]) == (
        "reauth_required",
        "invalid_grant: token revoked",
    )

    tightest = data["ratelimit_headroom"][0]
    assert tightest["integration_id"] == str(busy["task"].integration_id)
    assert (tightest["level"], tightest["used"], tightest["limit"]) == ("integration", 8, 10)
    assert tightest["headroom"] == pytest.approx(0.2)


def test_the_page_draws_every_panel_as_svg_with_the_numbers(operator, busy):
    response = operator.get(PAGE)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    for panel in (
        "records",
        "runs",
        "queues",
        "webhooks",
        "ratelimits",
        "credentials",
        "deadletters",
    ):
        assert f'id="panel-{panel}"' in html
    assert html.count('<svg class="castiel-chart"') == 8
    assert 'data-series="created" data-value="5"' in html
    assert 'data-series="failed" data-value="1"' in html
    assert 'data-series="rejected" data-value="3"' in html
    assert "20% left" in html and "invalid_grant: token revoked" in html
    # It refreshes itself: polls its panels (and a meta refresh without JavaScript).
    assert "?fragment=1" in html and 'http-equiv="refresh"' in html
    fragment = operator.get(PAGE, {"fragment": "1"}).content.decode()
    assert fragment.lstrip().startswith('<div class="castiel-dash"') and "<html" not in fragment


def test_the_admin_links_the_dashboard(operator):
    assert "/admin/dashboard/" in operator.get("/admin/").content.decode()


def test_one_tenant_at_a_time(operator, tenant, other_tenant, busy):
    theirs_task = task_with(other_tenant)
    mine = operator.get(DATA, {"tenant": str(tenant.pk)}).json()
    theirs = operator.get(DATA, {"tenant": str(other_tenant.pk)}).json()
    assert sum(mine["records_per_hour"]["values"]["created"]) == 12
    assert sum(theirs["records_per_hour"]["values"]["created"]) == 0
    assert theirs["dead_letters"]["open"] == 0 and theirs["credential_statuses"] == {}
    assert [h["integration_id"] for h in theirs["ratelimit_headroom"]] == [
        str(theirs_task.integration_id)
    ]


def test_query_count_does_not_grow_with_the_data(operator, tenant, django_assert_max_num_queries):
    def grow(n):
        for _ in range(n):
            task = task_with(tenant)
            run(task, timezone.now(), status="failed", error_code="timeout")
            make_dead_letter(tenant)
            make_conflict(tenant)

    grow(2)
    with django_assert_max_num_queries(60) as small:
        operator.get(PAGE)
    grow(20)
    with django_assert_max_num_queries(60) as large:
        operator.get(PAGE)
    # Only the headroom panel reads per integration, and it is capped.
    assert len(large.captured_queries) <= len(small.captured_queries) + 2 * 12


def test_only_operators_see_it(client, django_user_model):
    assert client.get(PAGE).status_code == 302  # to the admin login
    staff = django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    client.force_login(staff)
    assert client.get(PAGE).status_code == 403
    assert client.get(DATA).status_code == 403


def test_empty_site(operator):
    html = operator.get(PAGE).content.decode()
    assert "nothing in the last 24 hours" in html
    assert OutboundChange.objects.count() == 0 and Conflict.objects.count() == 0
