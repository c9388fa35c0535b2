from django import forms
from django.contrib import admin, messages

from syncing import deadletters, outbox, services
from syncing.models import Conflict, DeadLetter, OutboundChange, Record, SyncRun, SyncTask


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


class RecordForm(forms.ModelForm):
    class Meta:
        model = Record
        fields = ["integration", "entity_type", "data"]

    def clean_data(self):
        data = self.cleaned_data["data"]
        if not isinstance(data, dict):
            raise forms.ValidationError("The data must be a JSON object.")
        if self.instance.pk and self.instance.deleted_at is not None:
            raise forms.ValidationError("The record is deleted; it cannot be edited.")
        return data


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    """Records are edited through the outbox services: every save (and delete) here is a local
    change with its outbound change in the same transaction, pushed to the provider next."""

    form = RecordForm
    list_display = ("entity_type", "external_id", "tenant", "version", "deleted_at", "synced_at")
    list_filter = ("entity_type", "tenant")
    search_fields = ("external_id",)
    actions = ["delete_locally"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["integration", "entity_type", "data"]
        return ["data", *[f.name for f in Record._meta.fields if f.name != "data"]]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f.name for f in Record._meta.fields if f.name != "data"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete would never reach the provider
        return actions

    def save_model(self, request, obj, form, change):
        actor = f"admin:{request.user}"
        try:
            if change:
                result = outbox.record_update(
                    tenant_id=obj.tenant_id,
                    record_id=obj.pk,
                    data=form.cleaned_data["data"],
                    replace=True,
                    origin=OutboundChange.Origin.ADMIN,
                    actor=actor,
                )
            else:
                result = outbox.record_create(
                    integration=form.cleaned_data["integration"],
                    entity_type=form.cleaned_data["entity_type"],
                    data=form.cleaned_data["data"],
                    origin=OutboundChange.Origin.ADMIN,
                    actor=actor,
                )
        except outbox.RecordChangeError as exc:
            # A race the form could not see (the record changed meanwhile): nothing was saved.
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        saved = Record.objects.get(pk=result.record.id)
        obj.__dict__.update(saved.__dict__)  # the admin's redirect and log use obj.pk

    def delete_model(self, request, obj):
        outbox.record_delete(
            tenant_id=obj.tenant_id,
            record_id=obj.pk,
            origin=OutboundChange.Origin.ADMIN,
            actor=f"admin:{request.user}",
        )

    @admin.action(description="Delete locally and at the provider")
    def delete_locally(self, request, queryset):
        done = 0
        for record in queryset.filter(deleted_at__isnull=True):
            self.delete_model(request, record)
            done += 1
        self.message_user(request, f"{done} record(s) deleted; the deletes are queued")


@admin.register(OutboundChange)
class OutboundChangeAdmin(admin.ModelAdmin):
    list_display = (
        "operation",
        "entity_type",
        "external_id",
        "status",
        "attempts",
        "next_attempt_at",
        "origin",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "operation", "origin", "tenant")
    search_fields = ("external_id", "record_id", "remote_id", "correlation_id")
    list_select_related = ("integration",)
    readonly_fields = [f.name for f in OutboundChange._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = (
        "operation",
        "entity_type",
        "external_id",
        "error_code",
        "response_status",
        "attempts",
        "status",
        "created_at",
    )
    list_filter = ("status", "error_code", "operation", "tenant")
    search_fields = ("external_id", "record_id", "error_message", "correlation_id")
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay", "discard"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        # Actions run without change permission (they go through the services).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def _resolve(self, request, queryset, bulk, verb):
        done, skipped = bulk(dead_letters=list(queryset), by=f"admin:{request.user}")
        self.message_user(request, f"{len(done)} dead letter(s) {verb}", messages.SUCCESS)
        for dead_letter_id, reason in skipped.items():
            self.message_user(request, f"{dead_letter_id}: {reason}", messages.WARNING)

    @admin.action(description="Replay (push again)")
    def replay(self, request, queryset):
        self._resolve(request, queryset, deadletters.dead_letters_replay, "replayed")

    @admin.action(description="Discard (give up; the record's later changes go ahead)")
    def discard(self, request, queryset):
        self._resolve(request, queryset, deadletters.dead_letters_discard, "discarded")


# -- push rules (minimal; syncing/rules.py). A block of its own so it merges cleanly. ----------
from syncing.models import PushRule  # noqa: E402


@admin.register(PushRule)
class PushRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "tenant",
        "source_integration",
        "source_entity_type",
        "target_integration",
        "target_entity_type",
        "match_field",
        "enabled",
        "last_fired_at",
        "last_outcome",
    )
    list_filter = ("enabled", "tenant")
    search_fields = ("name", "source_entity_type", "target_entity_type")
    readonly_fields = ("last_fired_at", "last_outcome", "created_at", "updated_at")
