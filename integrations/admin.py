from django.contrib import admin

from integrations.models import Integration


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "provider", "enabled", "status", "updated_at")
    list_filter = ("provider", "enabled", "status", "tenant")
    search_fields = ("name", "tenant__name", "provider")
    readonly_fields = ("id", "created_at", "updated_at")
    list_select_related = ("tenant",)
