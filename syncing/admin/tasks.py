"""Sync tasks: run now, pause/resume, reset cursor, and the dry-run preview page."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from syncing import services
from syncing.inbound.preview import MAX_PAGES, sync_task_preview
from syncing.models import SyncRun, SyncTask

RECENT_RUNS = 10


class PreviewForm(forms.Form):
    pages = forms.TypedChoiceField(
        choices=[(n, f"{n} page{'s' if n > 1 else ''}") for n in range(1, MAX_PAGES + 1)],
        coerce=int,
        initial=1,
        help_text="How many pages to fetch from the provider (each is one real request).",
    )


@admin.register(SyncTask)
class SyncTaskAdmin(admin.ModelAdmin):
    # Priority, leases and counters are on the task's page.
    list_display = ("task", "entity_type", "mode", "status_badge", "next_run", "last_success")
    list_display_links = ("task",)
    list_filter = ("status", "enabled", "mode", "conflict_strategy", "tenant")
    search_fields = ("=id", "name", "entity_type", "integration__name")
    list_select_related = ("tenant", "integration")
    change_form_template = "admin/syncing/synctask/change_form.html"
    readonly_fields = (
        "id",
        "tenant",
        "status",
        "status_reason",
        "lease_owner",
        "lease_expires_at",
        "queued_at",
        "last_run_at",
        "last_success_at",
        "consecutive_failures",
        "run_requested",
        "checkpoint",
        "state",
        "full_refresh_generation",
        "recent_runs",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "tenant", "integration", "name", "entity_type", "direction")}),
        ("Schedule", {"fields": ("enabled", "mode", "interval_seconds", "cron", "priority")}),
        (
            "Pipeline",
            {
                "fields": (
                    "field_mapping",
                    "dedup_strategy",
                    "dedup_config",
                    "conflict_strategy",
                    "conflict_config",
                    "push_conflict_strategy",
                    "push_max_attempts",
                )
            },
        ),
        (
            "State",
            {
                "fields": (
                    "status",
                    "status_reason",
                    "next_run_at",
                    "run_requested",
                    "lease_owner",
                    "lease_expires_at",
                    "queued_at",
                    "last_run_at",
                    "last_success_at",
                    "consecutive_failures",
                    "checkpoint",
                    "state",
                    "full_refresh_generation",
                )
            },
        ),
        ("Recent runs", {"fields": ("recent_runs",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    actions = ["run_now", "pause", "resume", "reset_cursor", "preview"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # the add form: configuration only
            return [fs for fs in self.fieldsets if fs[0] in (None, "Schedule", "Pipeline")][:3]
        return self.fieldsets

    @admin.display(description="task", ordering="name")
    def task(self, obj):
        return ui.two_lines(ui.truncate(obj, 40), obj.tenant.name)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        shown = ui.badge(obj.status, obj.get_status_display())
        failures = obj.consecutive_failures
        if not obj.enabled and obj.status != "paused":
            return ui.two_lines(shown, "disabled")
        return (
            ui.two_lines(shown, ui.count(failures, "failure in a row", "failures in a row"))
            if failures
            else shown
        )

    @admin.display(description="next run", ordering="next_run_at")
    def next_run(self, obj):
        return ui.when(obj.next_run_at)

    @admin.display(description="last success", ordering="last_success_at")
    def last_success(self, obj):
        return ui.when(obj.last_success_at)

    def empty_state(self):
        return format_html(
            "No sync tasks yet. A task pulls one entity type of an integration on a schedule: "
            '<a href="{}">add a sync task</a> for one of the <a href="{}">integrations</a>.',
            reverse("admin:syncing_synctask_add"),
            reverse("admin:integrations_integration_changelist"),
        )

    @admin.display(description="Recent runs")
    def recent_runs(self, obj):
        runs = list(SyncRun.objects.filter(task=obj).order_by("-started_at")[:RECENT_RUNS])
        if not runs:
            return "No runs yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    ui.link("syncing", "syncrun", run.pk, f"{run.started_at:%Y-%m-%d %H:%M:%S}"),
                    ui.badge(run.status),
                    run.trigger,
                    ui.duration(run.duration_seconds),
                    run.fetched,
                    run.created,
                    run.updated,
                    run.deleted,
                    run.error_code or "",
                )
                for run in runs
            ),
        )
        more = ui.changelist_link(
            "syncing", "syncrun", "all runs of this task", task__id__exact=obj.pk
        )
        return format_html(
            '<table class="castiel-table"><thead><tr><th>started</th><th>status</th>'
            "<th>trigger</th><th>duration</th><th>fetched</th><th>created</th><th>updated</th>"
            "<th>deleted</th><th>error</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            rows,
            more,
        )

    # -- object pages --------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<uuid:task_id>/preview/", wrap(self.preview_view), name="syncing_synctask_preview"
            ),
            path(
                "<uuid:task_id>/run-now/", wrap(self.run_now_view), name="syncing_synctask_run_now"
            ),
            path(
                "<uuid:task_id>/reset-cursor/",
                wrap(self.reset_cursor_view),
                name="syncing_synctask_reset_cursor",
            ),
            *super().get_urls(),
        ]

    def _task(self, request, task_id) -> SyncTask:
        task = get_object_or_404(SyncTask.objects.select_related("integration"), pk=task_id)
        if not self.has_change_permission(request, task):
            raise PermissionDenied
        return task

    def _back(self, task) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:syncing_synctask_change", args=[task.pk]))

    def run_now_view(self, request, task_id):
        task = self._task(request, task_id)
        if request.method == "POST":
            self._run_now(request, [task])
        return self._back(task)

    def reset_cursor_view(self, request, task_id):
        task = self._task(request, task_id)
        if request.method == "POST":
            self._reset(request, [task])
        return self._back(task)

    def preview_view(self, request, task_id):
        task = self._task(request, task_id)
        form = PreviewForm(request.POST or None)
        preview = None
        if request.method == "POST" and form.is_valid():
            preview = sync_task_preview(task=task, max_pages=form.cleaned_data["pages"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dry run: {task}",
            "opts": self.model._meta,
            "original": task,
            "task": task,
            "form": form,
            "preview": preview,
            "counts": _preview_counts(preview) if preview else [],
            "items": _preview_items(preview) if preview else [],
        }
        return TemplateResponse(request, "admin/syncing/synctask/preview.html", context)

    # -- actions -------------------------------------------------------------------------------

    def _run_now(self, request, tasks):
        queued = sum(services.sync_task_run_now(task=task) for task in tasks)
        busy = len(tasks) - queued
        self.message_user(
            request,
            f"{ui.count(queued, 'task')} queued to run now"
            + (f"; {ui.count(busy, 'task')} already running, to run again after" if busy else ""),
            messages.SUCCESS,
        )

    def _reset(self, request, tasks):
        done = [task for task in tasks if services.sync_task_reset_cursor(task=task)]
        if done:
            self.message_user(
                request,
                f"Cursor reset for {ui.count(len(done), 'task')}: the next run reads everything "
                "again.",
                messages.SUCCESS,
            )
        for task in tasks:
            if task not in done:
                self.message_user(
                    request, f"{task}: a run holds the task; its cursor was kept.", messages.WARNING
                )

    @admin.action(description="Run the selected tasks now", permissions=["change"])
    def run_now(self, request, queryset):
        self._run_now(request, list(queryset))

    @admin.action(
        description="Pause the selected tasks (no scheduled runs)", permissions=["change"]
    )
    def pause(self, request, queryset):
        tasks = list(queryset)
        for task in tasks:
            services.sync_task_pause(task=task)
        self.message_user(
            request,
            f"{ui.count(len(tasks), 'task')} paused: no scheduled run until resumed.",
            messages.SUCCESS,
        )

    @admin.action(description="Resume the selected tasks", permissions=["change"])
    def resume(self, request, queryset):
        tasks = list(queryset)
        for task in tasks:
            services.sync_task_resume(task=task)
        self.message_user(
            request, f"{ui.count(len(tasks), 'task')} resumed on schedule.", messages.SUCCESS
        )

    @admin.action(
        description="Reset the cursor of the selected tasks (the next run reads everything)",
        permissions=["change"],
    )
    def reset_cursor(self, request, queryset):
        self._reset(request, list(queryset))

    # A dry run makes real requests with the task's credentials: as the preview page does,
    # it takes the change permission.
    @admin.action(
        description="Dry run: show what the first selected task's next run would change",
        permissions=["change"],
    )
    def preview(self, request, queryset):
        task = queryset.first()
        return HttpResponseRedirect(reverse("admin:syncing_synctask_preview", args=[task.pk]))


def _preview_counts(preview) -> list[tuple[str, int]]:
    names = ("fetched", "created", "updated", "deleted", "unchanged", "conflicts", "duplicates")
    names += ("echoes", "errors")
    return [(name, preview.counts.get(name, 0)) for name in names]


def _preview_items(preview) -> list[dict]:
    """Rows for the preview table: per changed field, its value before and after."""
    rows = []
    for item in preview.items:
        before, after = item.before or {}, item.after or {}
        rows.append(
            {
                "action": item.action,
                "badge": ui.badge(item.action),
                "external_id": item.external_id,
                "record": ui.admin_url("syncing", "record", item.record_id)
                if item.action != "created"
                else None,
                "changes": [
                    (name, ui.short_json(before.get(name)), ui.short_json(after.get(name)))
                    for name in item.fields
                ],
                "summary": ui.short_json(after, limit=200) if item.action == "created" else "",
            }
        )
    return rows
