"""Sync runs: counts, durations, errors, and a progress bar while a run is going."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from syncing.models import Conflict, RecordChange, SyncRun


def _estimate(run: SyncRun) -> int | None:
    """Records the last complete run of the same task and mode fetched: the yardstick for a
    running full refresh. Incremental runs read what changed, which nothing predicts."""
    if run.mode != "full":
        return None
    return (
        SyncRun.objects.filter(task_id=run.task_id, mode=run.mode, status=SyncRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-started_at")
        .values_list("fetched", flat=True)
        .first()
    )


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    # One column for the counts: the page has each counter, the retries and the errors.
    list_display = ("started", "task_name", "state", "trigger", "duration", "counts")
    list_display_links = ("started",)
    list_filter = ("status", "trigger", "mode", "error_code", "tenant")
    search_fields = ("=id", "=task__id", "task__name", "task__entity_type", "correlation_id")
    list_select_related = ("task", "task__integration")
    date_hierarchy = "started_at"
    show_full_result_count = False  # a second COUNT over every run, for a number nobody reads
    change_form_template = "admin/syncing/syncrun/change_form.html"
    change_list_template = "admin/syncing/syncrun/change_list.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task",
                    "state",
                    "trigger",
                    "mode",
                    "resumed_from",
                    "started_at",
                    "finished_at",
                    "heartbeat_at",
                    "duration",
                    "rate",
                )
            },
        ),
        (
            "Counts",
            {"fields": SyncRun.COUNTERS},
        ),
        ("Errors", {"fields": ("error_code", "error_text", "retry_table")}),
        ("What it changed", {"fields": ("changes",)}),
        ("Tracing", {"fields": ("id", "lease_owner", "execution_id", "correlation_id")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, spec in self.fieldsets for name in spec["fields"]]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
        return super().changelist_view(
            request, extra_context={**(extra_context or {}), "runs_in_progress": running}
        )

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def state(self, obj):
        if obj.status != SyncRun.Status.RUNNING:
            shown = ui.badge(obj.status, obj.get_status_display().split(" (")[0])
            return ui.two_lines(shown, obj.error_code) if obj.error_code else shown
        label = f"{obj.fetched} records, page {obj.pages + 1}"
        return ui.progress(obj.fetched, _estimate(obj), label)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj):
        return ui.when(obj.started_at)

    @admin.display(description="task", ordering="task__name")
    def task_name(self, obj):
        return ui.truncate(obj.task, 34)

    @admin.display(description="records")
    def counts(self, obj):
        parts = [f"{obj.fetched} fetched"]
        parts += [
            f"{n} {name}"
            for name, n in (
                ("created", obj.created),
                ("updated", obj.updated),
                ("deleted", obj.deleted),
                ("conflicts", obj.conflicts),
                ("errors", obj.errors),
            )
            if n
        ]
        return format_html(
            '<span title="{}">{}</span>',
            ", ".join(parts),
            ui.two_lines(parts[0], ", ".join(parts[1:])),
        )

    def empty_state(self):
        return format_html(
            "No sync runs yet. A run is recorded each time a sync task pulls: they start on "
            'the tasks\' schedules, or now with "Run the selected tasks now" in '
            '<a href="{}">sync tasks</a>.',
            reverse("admin:syncing_synctask_changelist"),
        )

    @admin.display(description="duration")
    def duration(self, obj):
        return ui.duration(obj.duration_seconds)

    @admin.display(description="records/s")
    def rate(self, obj):
        return obj.records_per_second or "—"

    @admin.display(description="error summary")
    def error_text(self, obj):
        if not obj.error_summary:
            return "—"
        return format_html('<pre class="castiel-pre">{}</pre>', obj.error_summary)

    @admin.display(description="retries")
    def retry_table(self, obj):
        if not obj.retry_log:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry.get("at", ""),
                    entry.get("page", ""),
                    entry.get("code", ""),
                    entry.get("delay", ""),
                    entry.get("reason", ""),
                )
                for entry in obj.retry_log
            ),
        )
        return format_html(
            '<table class="castiel-table"><thead><tr><th>at</th><th>page</th><th>code</th>'
            "<th>wait (s)</th><th>reason</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="changes")
    def changes(self, obj):
        changed = RecordChange.objects.filter(source="run", source_id=str(obj.pk)).count()
        conflicts = Conflict.objects.filter(run=obj).count()
        parts = [
            ui.changelist_link(
                "syncing",
                "recordchange",
                f"{changed} record change(s)",
                source="run",
                source_id=str(obj.pk),
            )
        ]
        if conflicts:
            parts.append(
                ui.changelist_link(
                    "syncing", "conflict", f"{conflicts} conflict(s)", run__id__exact=str(obj.pk)
                )
            )
        return format_html_join(" · ", "{}", ((part,) for part in parts))
