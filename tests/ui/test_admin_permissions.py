"""A staff user who may only *view* changes nothing through the admin.

Every admin action of every registered model, every custom admin page (run now, reset
cursor, dry run, replay, discard, connect, ...) and every add, change and delete form is
refused to a staff user holding every ``view_*`` permission and nothing else. The walks are
generic: a new action or admin page added without a permission check fails here.
"""

from __future__ import annotations

import functools

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import URLPattern, reverse

from tests.ui.population import populate

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

# The admin's own URL names per model (Django checks these pages' permissions itself; the
# forms are still posted below, since several admins override their views).
STANDARD_PAGES = ("changelist", "add", "history", "delete", "change")


@pytest.fixture
def viewer_user(django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return django_user_model.objects.get(pk=user.pk)  # a fresh permission cache


@pytest.fixture
def viewer(client, viewer_user):
    client.force_login(viewer_user)
    return client


def populate_everything(tenant) -> None:
    """One row of every registered model: Castiel's, plus auth's and the task queue's."""
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_q.models import OrmQ, Schedule, Task

    populate(tenant)
    Group.objects.create(name="operators")
    now = timezone.now()
    for success in (True, False):
        Task.objects.create(
            id=f"task-{success}",
            name=f"task-{success}",
            func="math.floor",
            args=(1.5,),
            started=now,
            stopped=now,
            success=success,
        )
    Schedule.objects.get_or_create(name="perm-walk", defaults={"func": "math.floor"})
    OrmQ.objects.create(key="hperms", payload="x", lock=now)
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    seen = {"user_agent": "test", "ip_address": "127.0.0.1", "username": "ops", "path_info": "/"}
    AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=1)
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen)


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def every_action(model_admin):
    """(name, function) of each action the admin defines, whoever may run it."""
    return [(name, func) for func, name, _description in model_admin._get_base_actions()]


@pytest.mark.embedded
def test_a_view_only_user_is_offered_no_admin_action(viewer_user, rf):
    request = rf.get("/admin/")
    request.user = viewer_user
    offered = {
        model._meta.label: sorted(model_admin.get_actions(request))
        for model, model_admin in registered()
        if model_admin.get_actions(request)
    }
    assert offered == {}, "give these actions permissions=[...] (change or delete)"


@pytest.mark.embedded
def test_the_change_and_delete_permissions_bring_the_actions_back(django_user_model, rf):
    from syncing.models import Record, SyncTask

    user = django_user_model.objects.create_user("editor", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_synctask", "change_synctask", "view_record", "delete_record"]
        )
    )
    request = rf.get("/admin/")
    request.user = django_user_model.objects.get(pk=user.pk)
    assert set(admin.site._registry[SyncTask].get_actions(request)) == {
        "run_now",
        "pause",
        "resume",
        "reset_cursor",
        "preview",
    }
    assert set(admin.site._registry[Record].get_actions(request)) == {"delete_locally"}


@pytest.mark.embedded
def test_every_admin_action_posted_by_a_view_only_user_is_refused(viewer, tenant, monkeypatch):
    populate_everything(tenant)
    ran: list[str] = []

    def spy(func, label):
        @functools.wraps(func)  # keeps allowed_permissions and the description
        def refused_or_recorded(*args, **kwargs):
            ran.append(label)

        return refused_or_recorded

    for name, func in list(admin.site.actions):
        monkeypatch.setitem(admin.site._actions, name, spy(func, f"site:{name}"))
    walked = []
    for model, model_admin in registered():
        spies = {}
        for name, func in every_action(model_admin):
            spies[func] = spy(func, f"{model.__name__}.{name}")
            if hasattr(type(model_admin), name):  # actions named by a method
                monkeypatch.setattr(type(model_admin), name, spies[func])
        # Actions listed as functions (django_q's resubmit_task, for one).
        listed = [spies.get(action, action) for action in model_admin.actions or []]
        monkeypatch.setattr(model_admin, "actions", listed)
        obj = model.objects.first()
        assert obj is not None, f"populate() made no {model._meta.label}"
        opts = model._meta
        for name, _func in every_action(model_admin):
            walked.append(f"{model.__name__}.{name}")
            response = viewer.post(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                {"action": name, "_selected_action": [str(obj.pk)], "index": "0"},
            )
            assert response.status_code in (200, 302, 403)
    assert "SyncTask.run_now" in walked and "ApiKey.revoke" in walked  # the walk saw them
    assert ran == [], f"view-only staff ran: {ran}"


def custom_pages(model_admin):
    """The admin's own pages beyond Django's (buttons such as run now, replay, connect)."""
    opts = model_admin.model._meta
    standard = {f"{opts.app_label}_{opts.model_name}_{page}" for page in STANDARD_PAGES}
    return [
        pattern
        for pattern in model_admin.get_urls()
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in standard
    ]


@pytest.mark.embedded
def test_every_custom_admin_page_refuses_a_post_from_a_view_only_user(viewer, tenant):
    populate_everything(tenant)
    refused, allowed = [], []
    for model, model_admin in registered():
        obj = model.objects.first()
        for pattern in custom_pages(model_admin):
            params = {name: obj.pk for name in pattern.pattern.converters}
            url = reverse(f"admin:{pattern.name}", kwargs=params)
            status = viewer.post(url, {}).status_code
            (refused if status == 403 else allowed).append((url, status))
    assert {url.split("/")[-2] for url, _ in refused} >= {
        "preview",
        "run-now",
        "reset-cursor",
        "replay",
        "discard",
        "connect",
    }
    assert allowed == []


@pytest.mark.embedded
def test_every_add_change_and_delete_form_refuses_a_view_only_user(viewer, tenant):
    populate_everything(tenant)
    allowed = []
    for model, _model_admin in registered():
        opts = model._meta
        obj = model.objects.first()
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        for url, data in (
            (f"{base}add/", {}),
            (f"{base}{obj.pk}/change/", {}),
            (f"{base}{obj.pk}/delete/", {"post": "yes"}),
        ):
            status = viewer.post(url, data).status_code
            if status != 403:
                allowed.append((url, status))
    assert allowed == []


@pytest.mark.parametrize("record_store", ["orm", "cosmos"], indirect=True)
def test_a_view_only_user_cannot_edit_or_delete_a_record_in_any_store(
    viewer, stored_records, record_store
):
    _integration, records = stored_records
    a = records["a"]
    page = viewer.get(f"/admin/syncing/record/{a.id}/change/")
    assert page.status_code == 200 and "Ada" in page.content.decode()
    edit = viewer.post(f"/admin/syncing/record/{a.id}/change/", {"data": '{"name": "X"}'})
    delete = viewer.post(f"/admin/syncing/record/{a.id}/delete/", {"post": "yes"})
    assert (edit.status_code, delete.status_code) == (403, 403)
    kept = record_store.get(a.tenant_id, a.id)
    assert kept.data["name"] == "Ada" and kept.deleted_at is None
