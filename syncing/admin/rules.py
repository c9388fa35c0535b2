"""Push rules in the admin (webhook event → write a record of another integration)."""

from django.contrib import admin

from syncing.models import PushRule


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
