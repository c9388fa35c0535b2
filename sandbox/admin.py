"""The sandbox (a simulated SaaS) in the admin. Objects are edited through the sandbox's own
services, so an edit here is a *remote* change: it moves ``updated_at`` and sends the signed
webhook exactly as an API write to the sandbox would (handy to demonstrate a pull or a
webhook arriving)."""

from django import forms
from django.contrib import admin, messages

from castiel import admin_helpers as ui
from sandbox import services
from sandbox.models import (
    SandboxAccount,
    SandboxDelivery,
    SandboxIdempotencyKey,
    SandboxObject,
    SandboxRequest,
)


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ("slug", "rate_limit", "request_count", "webhooks_to", "created_at")
    search_fields = ("slug",)
    exclude = ("api_key", "webhook_secret")  # secrets are set via the control API/command
    readonly_fields = ("request_count", "window_started_at", "window_count", "created_at")

    @admin.display(description="webhooks to", ordering="webhook_url")
    def webhooks_to(self, obj):
        return ui.truncate(obj.webhook_url, 40)


class SandboxObjectForm(forms.ModelForm):
    class Meta:
        model = SandboxObject
        fields = ["account", "collection", "data"]

    def clean_data(self):
        data = self.cleaned_data["data"]
        try:
            services.validate(self.cleaned_data.get("collection") or "", data)
        except services.Invalid as exc:  # what the sandbox API answers 422 for
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(SandboxObject)
class SandboxObjectAdmin(admin.ModelAdmin):
    form = SandboxObjectForm
    list_display = ("id", "account", "collection", "summary", "updated", "deleted_at")
    list_filter = ("collection", "account", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("=id", "data")
    readonly_fields = ("created_at", "updated_at", "deleted_at")
    show_full_result_count = False
    actions = ["soft_delete"]

    @admin.display(description="data")
    def summary(self, obj):
        return ui.truncate(", ".join(f"{k}={v}" for k, v in obj.data.items()), 48)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj):
        return ui.when(obj.updated_at)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("account", "collection", *self.readonly_fields)
        return self.readonly_fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the sandbox soft-deletes (tombstones in feeds)
        return actions

    def save_model(self, request, obj, form, change):
        if change:
            services.object_update(obj=obj, data=form.cleaned_data["data"], replace=True)
            return
        created = services.object_create(
            account=obj.account, collection=obj.collection, data=form.cleaned_data["data"]
        )
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.object_delete(obj=obj)

    @admin.action(
        description="Delete the selected objects (tombstones, as the sandbox API does)",
        permissions=["delete"],
    )
    def soft_delete(self, request, queryset):
        done = 0
        for obj in queryset.filter(deleted_at__isnull=True):
            services.object_delete(obj=obj)
            done += 1
        self.message_user(
            request,
            f"{ui.count(done, 'object')} deleted (tombstones, announced by webhook).",
            messages.SUCCESS,
        )


@admin.register(SandboxIdempotencyKey)
class SandboxIdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ("key", "account", "method", "path", "status", "created_at")
    list_filter = ("status", "method", "account")
    search_fields = ("=key", "path")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SandboxRequest)
class SandboxRequestAdmin(admin.ModelAdmin):
    list_display = ("at", "account", "call", "status", "fault", "applied")
    list_display_links = ("at",)
    list_filter = ("status", "fault", "method", "applied", "account")
    search_fields = ("path", "=idempotency_key")
    show_full_result_count = False

    @admin.display(description="request", ordering="path")
    def call(self, obj):
        return ui.truncate(f"{obj.method} {obj.path}", 40)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SandboxDelivery)
class SandboxDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_id", "account", "event_type", "last_status", "attempts", "delivered_at")
    list_filter = ("event_type", "last_status", "account")
    search_fields = ("=event_id",)
    exclude = ("body",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
