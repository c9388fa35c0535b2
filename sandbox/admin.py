from django.contrib import admin

from sandbox.models import SandboxAccount, SandboxDelivery, SandboxRequest


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ("slug", "rate_limit", "request_count", "webhook_url", "created_at")
    search_fields = ("slug",)
    exclude = ("api_key", "webhook_secret")  # secrets are set via the control API/command
    readonly_fields = ("request_count", "window_started_at", "window_count", "created_at")


@admin.register(SandboxRequest)
class SandboxRequestAdmin(admin.ModelAdmin):
    list_display = ("account", "number", "method", "path", "status", "fault", "at")
    list_filter = ("status", "fault", "account")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SandboxDelivery)
class SandboxDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_id", "account", "event_type", "last_status", "attempts", "delivered_at")
    list_filter = ("event_type", "account")
    exclude = ("body",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
