from django.contrib import admin, messages

from syncing import services
from syncing.models import Conflict, Record, SyncRun, SyncTask


@admin.register(SyncTask)
class SyncTaskAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "tenant",
        "entity_type",
        "mode",
        "enabled",
        "status",
        "priority",
        "next_run_at",
        "last_success_at",
    )
    list_filter = ("status", "enabled", "mode", "tenant")
    search_fields = ("name", "entity_type", "integration__name")
    list_select_related = ("tenant", "integration")
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
        "checkpoint",
        "state",
        "full_refresh_generation",
        "created_at",
        "updated_at",
    )
    actions = ["run_now", "pause", "resume"]

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        queued = sum(services.sync_task_run_now(task=task) for task in queryset)
        busy = queryset.count() - queued
        self.message_user(
            request,
            f"{queued} task(s) queued" + (f"; {busy} busy, will run again after" if busy else ""),
            messages.SUCCESS,
        )

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        for task in queryset:
            services.sync_task_pause(task=task)
        self.message_user(request, f"{queryset.count()} task(s) paused", messages.SUCCESS)

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        for task in queryset:
            services.sync_task_resume(task=task)
        self.message_user(request, f"{queryset.count()} task(s) resumed", messages.SUCCESS)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = (
        "task",
        "status",
        "trigger",
        "started_at",
        "finished_at",
        "pages",
        "fetched",
        "created",
        "updated",
        "conflicts",
        "errors",
        "retries",
    )
    list_filter = ("status", "trigger", "tenant")
    list_select_related = ("task", "task__integration")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    list_display = ("entity_type", "external_id", "task", "status", "resolution", "created_at")
    list_filter = ("status", "entity_type", "tenant")
    readonly_fields = [f.name for f in Conflict._meta.fields]
    actions = ["take_remote", "keep_local"]

    def has_add_permission(self, request):
        return False

    def _resolve(self, request, queryset, resolution):
        done = 0
        for conflict in queryset.filter(status=Conflict.Status.OPEN):
            try:
                services.conflict_resolve(
                    conflict=conflict, resolution=resolution, by=f"admin:{request.user}"
                )
                done += 1
            except services.ConflictError as exc:
                self.message_user(request, f"{conflict}: {exc}", messages.ERROR)
        self.message_user(request, f"{done} conflict(s) resolved", messages.SUCCESS)

    @admin.action(description="Resolve: take the remote version")
    def take_remote(self, request, queryset):
        self._resolve(request, queryset, Conflict.Resolution.REMOTE)

    @admin.action(description="Resolve: keep the local version")
    def keep_local(self, request, queryset):
        self._resolve(request, queryset, Conflict.Resolution.LOCAL)


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("entity_type", "external_id", "tenant", "version", "deleted_at", "synced_at")
    list_filter = ("entity_type", "tenant")
    search_fields = ("external_id",)
    readonly_fields = [f.name for f in Record._meta.fields]

    def has_add_permission(self, request):
        return False
