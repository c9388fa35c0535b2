"""Every model has an admin page that renders — list, search, detail and add — and the
operator actions on sync tasks, runs, records and dead letters work through the services."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from syncing.models import (
    Conflict,
    DeadLetter,
    OutboundChange,
    Record,
    RecordChange,
    SyncRun,
    SyncTask,
)
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.ui.population import CASTIEL_APPS, populate

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def castiel_models():
    return [model for label in CASTIEL_APPS for model in apps.get_app_config(label).get_models()]


def test_every_model_has_an_admin_page():
    missing = [m._meta.label for m in castiel_models() if m not in admin.site._registry]
    assert not missing, f"register these in their app's admin.py: {missing}"


def test_every_admin_page_renders(operator, operator_user, tenant, rf):
    populate(tenant)
    request = rf.get("/admin/")
    request.user = operator_user
    failures = []
    for model in castiel_models():
        model_admin = admin.site._registry[model]
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        urls = [base]
        if model_admin.search_fields:
            urls.append(f"{base}?q=ada")
        obj = model.objects.first()
        assert obj is not None, f"populate() made no {opts.label}"
        urls.append(f"{base}{obj.pk}/change/")
        if model_admin.has_add_permission(request):
            urls.append(f"{base}add/")
        for url in urls:
            response = operator.get(url)
            if response.status_code != 200:
                failures.append((url, response.status_code))
    assert not failures


def test_a_record_page_shows_its_history_and_links_the_sources(operator, tenant):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}])
    record = stored(task)["1"]
    operator.post(
        f"/admin/syncing/record/{record.id}/change/", {"data": '{"id": "1", "name": "B"}'}
    )
    page = operator.get(f"/admin/syncing/record/{record.id}/change/").content.decode()
    assert 'id="record-history"' in page
    change = OutboundChange.objects.get(record_id=record.id)
    assert f"/admin/syncing/outboundchange/{change.pk}/change/" in page
    assert "admin:ops" in page and "<td>name</td>" in page
    assert RecordChange.objects.filter(record_id=record.id, source="admin").exists()


def test_a_record_page_shows_its_base_whether_or_not_it_is_stored_apart(operator, tenant):
    """The base is stored only while it differs from the data: the page shows it either way."""
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}])
    record = stored(task)["1"]
    url = f"/admin/syncing/record/{record.id}/change/"
    ada = "&quot;name&quot;: &quot;Ada&quot;"

    synced = operator.get(url).content.decode()
    assert "Base data" in synced
    assert synced.count(ada) == 2, "the data, and the base shown from it"

    operator.post(url, {"data": '{"id": "1", "name": "Bea"}'})
    edited = operator.get(url).content.decode()
    assert ada in edited, "the base is still the synced version while the edit waits to go out"
    assert "&quot;name&quot;: &quot;Bea&quot;" in edited


def test_task_actions_reset_cursor_and_pause(operator, tenant):
    task = task_with(tenant)
    SyncTask.objects.filter(pk=task.pk).update(
        state={"watermark": "2024-01-01T00:00:00Z"}, checkpoint={"cursor": {"page": 3}}
    )
    response = operator.post(
        "/admin/syncing/synctask/",
        {"action": "reset_cursor", "_selected_action": [str(task.pk)]},
        follow=True,
    )
    assert "the next run reads everything again" in response.content.decode()
    task.refresh_from_db()
    assert (task.state, task.checkpoint) == ({}, {})

    operator.post(
        f"/admin/syncing/synctask/{task.pk}/reset-cursor/", follow=True
    )  # the change page's button: same service
    operator.post("/admin/syncing/synctask/", {"action": "pause", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert (task.enabled, task.status) == (False, "paused")
    page = operator.get(f"/admin/syncing/synctask/{task.pk}/change/").content.decode()
    for tool in ("Run now", "Dry run", "Reset cursor", "Recent runs"):
        assert tool in page
    preview = operator.get(f"/admin/syncing/synctask/{task.pk}/preview/")
    assert preview.status_code == 200 and 'id="run-preview"' in preview.content.decode()


def test_a_running_run_shows_progress_and_refreshes_itself(operator, tenant):
    task = task_with(tenant, mode="full")
    SyncRun.objects.create(
        tenant=tenant, task=task, mode="full", status="succeeded", fetched=200, pages=2
    )
    running = SyncRun.objects.create(
        tenant=tenant, task=task, mode="full", status="running", fetched=50, pages=1
    )
    listing = operator.get("/admin/syncing/syncrun/").content.decode()
    assert 'value="25"' in listing, "50 of the last complete run's 200 records"
    assert 'http-equiv="refresh"' in listing
    detail = operator.get(f"/admin/syncing/syncrun/{running.pk}/change/").content.decode()
    assert "<progress" in detail and 'http-equiv="refresh"' in detail
    SyncRun.objects.filter(pk=running.pk).update(status="failed", error_code="http_500")
    assert 'http-equiv="refresh"' not in operator.get("/admin/syncing/syncrun/").content.decode()


def conflict_for(tenant):
    from syncing.outbound import local_changes

    task = task_with(tenant, conflict_strategy="manual")
    base = {"id": "1", "name": "Ada", "email": "ada@x.com", "phone": "1", "updated_at": "1"}
    apply_page(task, [base])
    record = stored(task)["1"]
    local_changes.record_update(
        tenant_id=tenant.id, record_id=record.id, data={"name": "Ada L.", "phone": "2"}
    )
    apply_page(task, [{**base, "name": "Ada Lovelace", "email": "ada@y.com", "updated_at": "2"}])
    return Conflict.objects.get(), record


def test_a_conflict_is_shown_side_by_side_and_resolved_field_by_field(operator, tenant):
    conflict, record = conflict_for(tenant)
    url = f"/admin/syncing/conflict/{conflict.pk}/change/"
    page = operator.get(url).content.decode()
    assert 'id="conflict-diff"' in page and "both changed" in page
    rows = {row: i for i, row in enumerate(sorted({"id", "name", "email", "phone", "updated_at"}))}

    # name changed on both sides: no default, so the form insists on a choice.
    missing = operator.post(url, {f"field-{rows['email']}": "remote"})
    assert "Choose the local or the remote value of &#x27;name&#x27;" in missing.content.decode()

    done = operator.post(
        url,
        {
            f"field-{rows['name']}": "local",
            f"field-{rows['email']}": "remote",
            f"field-{rows['phone']}": "local",
            f"field-{rows['updated_at']}": "remote",
        },
        follow=True,
    )
    assert "resolved (merged)" in done.content.decode()
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_by) == (
        "resolved",
        "merged",
        "admin:ops",
    )
    assert Record.objects.get(pk=record.id).data == {
        "id": "1",
        "name": "Ada L.",
        "email": "ada@y.com",
        "phone": "2",
        "updated_at": "2",
    }


def test_take_all_remote_in_one_click(operator, tenant):
    conflict, record = conflict_for(tenant)
    operator.post(f"/admin/syncing/conflict/{conflict.pk}/change/", {"all": "remote"})
    conflict.refresh_from_db()
    assert conflict.resolution == "remote"
    assert Record.objects.get(pk=record.id).data["name"] == "Ada Lovelace"


def test_dead_letter_page_replays_and_discards(operator, tenant):
    from tests.syncing.factories import make_dead_letter

    letter = make_dead_letter(tenant)
    page = operator.get(f"/admin/syncing/deadletter/{letter.pk}/change/").content.decode()
    assert 'id="replay"' in page and 'id="discard"' in page
    operator.post(f"/admin/syncing/deadletter/{letter.pk}/replay/", follow=True)
    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by) == ("replayed", "admin:ops")
    assert OutboundChange.objects.get(pk=letter.change_id).status == "pending"
    assert (
        'id="replay"'
        not in operator.get(f"/admin/syncing/deadletter/{letter.pk}/change/").content.decode()
    )


def test_view_only_staff_cannot_replay(client, tenant, django_user_model):
    from django.contrib.auth.models import Permission

    from tests.syncing.factories import make_dead_letter

    letter = make_dead_letter(tenant)
    viewer = django_user_model.objects.create_user(
        "viewer", password="pw-viewer-123", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(viewer)
    assert client.post(f"/admin/syncing/deadletter/{letter.pk}/replay/").status_code == 403
    assert DeadLetter.objects.get(pk=letter.pk).status == "open"


def test_outbound_changes_filter_by_a_stopped_worker(operator, tenant):
    from syncing.models import OutboundChange
    from syncing.outbound import local_changes
    from tests.factories import IntegrationFactory

    integration = IntegrationFactory(tenant=tenant)
    suspect, fine = (
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"n": n}
        ).change
        for n in (1, 2)
    )
    OutboundChange.objects.filter(pk=suspect.pk).update(lost_attempts=1)
    page = operator.get("/admin/syncing/outboundchange/?suspect=yes").content.decode()
    assert str(suspect.pk) in page and str(fine.pk) not in page
    page = operator.get("/admin/syncing/outboundchange/?suspect=no").content.decode()
    assert str(fine.pk) in page and str(suspect.pk) not in page
