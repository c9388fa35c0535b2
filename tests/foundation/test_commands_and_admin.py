"""Operator entry points: create_tenant, ensure_schedules and the admin for tenants/keys."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django_q.models import Schedule

from castiel import schedules
from castiel.tenancy.models import ApiKey, Tenant


@pytest.mark.embedded
@pytest.mark.django_db
def test_create_tenant_prints_a_working_key_alone_on_the_last_line(client):
    out = io.StringIO()
    call_command("create_tenant", "Globex Corporation", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("cst_") and " " not in key
    tenant = Tenant.objects.get(name="Globex Corporation")
    assert tenant.slug == "globex-corporation"
    response = client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200 and response.json()["id"] == str(tenant.id)


@pytest.mark.django_db
def test_create_tenant_with_an_empty_name_is_a_one_line_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must not be empty"):
        call_command("create_tenant", "   ")


@pytest.mark.django_db
def test_slugs_stay_unique():
    call_command("create_tenant", "Same", stdout=io.StringIO())
    call_command("create_tenant", "Same", stdout=io.StringIO())
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["same", "same-2"]


@pytest.mark.django_db
def test_schedules_are_created_idempotently(monkeypatch):
    Schedule.objects.all().delete()  # the ones migrate created for the test database
    monkeypatch.setattr(schedules, "_declared", {})
    schedules.declare("probe", "tests.foundation.tasks.record", minutes=5)
    monkeypatch.setattr(schedules, "autodiscover_modules", lambda name: None)
    assert schedules.ensure_schedules() == {"created": 1, "updated": 0, "deleted": 0}
    assert schedules.ensure_schedules() == {"created": 0, "updated": 0, "deleted": 0}
    schedules.declare("probe", "tests.foundation.tasks.record", minutes=7)
    assert schedules.ensure_schedules()["updated"] == 1
    assert Schedule.objects.get(name="castiel:probe").minutes == 7
    monkeypatch.setattr(schedules, "_declared", {})
    assert schedules.ensure_schedules()["deleted"] == 1
    assert not Schedule.objects.filter(name__startswith="castiel:").exists()


@pytest.mark.embedded
def test_migrate_creates_every_recurring_schedule_and_check_deploy_names_a_missing_one(
    tmp_path,
):
    """From an empty database through the real commands, as a deployment runs them."""
    from tests.foundation.test_settings import run_manage

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    before = run_manage(tmp_path, "check", "--deploy", **env)
    assert "castiel.E002" in before.stderr and "migrate" in before.stderr

    migrated = run_manage(tmp_path, "migrate", "--no-input", "-v0", **env)
    assert migrated.returncode == 0, migrated.stderr
    after = run_manage(tmp_path, "check", "--deploy", **env)
    assert "castiel.E002" not in after.stdout + after.stderr

    listed = run_manage(
        tmp_path,
        "shell",
        "-c",
        "from django_q.models import Schedule; "
        "print(sorted(Schedule.objects.values_list('name', flat=True)))",
        **env,
    )
    names = sorted(schedules.PREFIX + n for n in schedules.declared())
    assert listed.stdout.strip().splitlines()[-1] == repr(names)

    run_manage(
        tmp_path,
        "shell",
        "-c",
        "from django_q.models import Schedule; "
        "Schedule.objects.filter(name='castiel:sync-reaper').delete()",
        **env,
    )
    missing = run_manage(tmp_path, "check", "--deploy", **env)
    assert "castiel.E002" in missing.stderr and "castiel:sync-reaper" in missing.stderr


@pytest.mark.embedded
@pytest.mark.django_db
def test_healthz_fails_while_a_recurring_schedule_is_missing(detailed_client):
    client = detailed_client  # the check's detail needs the metrics token
    assert client.get("/healthz").json()["checks"]["schedules"]["status"] == "ok"
    Schedule.objects.filter(name="castiel:credentials.refresh_due").delete()
    answer = client.get("/healthz")
    assert answer.status_code == 503
    check = answer.json()["checks"]["schedules"]
    assert check["status"] == "fail" and "castiel:credentials.refresh_due" in check["detail"]
    call_command("ensure_schedules", stdout=io.StringIO())
    assert client.get("/healthz").json()["checks"]["schedules"]["status"] == "ok"


@pytest.fixture
def admin_client(client, db):
    User.objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    assert client.login(username="ops", password="correct horse battery")
    return client


@pytest.mark.embedded
@pytest.mark.django_db
def test_admin_shows_a_new_api_key_once_and_never_again(admin_client, tenant):
    response = admin_client.post(
        "/admin/tenancy/apikey/add/", {"tenant": str(tenant.pk), "name": "ci"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    key = ApiKey.objects.get(name="ci")
    start = page.index('id="new-api-key"')
    raw = page[start:].split(">", 1)[1].split("<", 1)[0]
    assert raw.startswith(f"cst_{key.prefix}_")
    assert "no-store" in response["Cache-Control"]
    assert (
        admin_client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    )
    for url in (
        "/admin/tenancy/apikey/",
        f"/admin/tenancy/apikey/{key.pk}/change/",
        f"/admin/tenancy/tenant/{tenant.pk}/change/",
    ):
        assert raw not in admin_client.get(url).content.decode()
    # The key never went into a cookie-backed message either.
    assert raw not in str(admin_client.cookies)


@pytest.mark.django_db
def test_admin_revoke_action(admin_client, tenant):
    from castiel.tenancy.services import api_key_create

    key, raw = api_key_create(tenant=tenant)
    admin_client.post(
        "/admin/tenancy/apikey/",
        {"action": "revoke", "_selected_action": [str(key.pk)]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert (
        admin_client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    )


@pytest.mark.django_db
def test_admin_is_branded(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Castiel" in page
