"""Push rules in the admin (webhook event → write a record of another integration)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from castiel import admin_helpers as ui
from syncing.models import PushRule


@admin.register(PushRule)
class PushRuleAdmin(admin.ModelAdmin):
    list_display = ("rule", "source", "target", "enabled", "last_fired")
    list_display_links = ("rule",)
    list_select_related = ("tenant", "source_integration", "target_integration")
    list_filter = ("enabled", "tenant")
    search_fields = ("name", "source_entity_type", "target_entity_type")
    readonly_fields = ("last_fired_at", "last_outcome", "created_at", "updated_at")

    def empty_state(self):
        return format_html(
            "No push rules. A rule turns a webhook event of one integration into a record "
            'of another and pushes it: <a href="{}">add a push rule</a>.',
            reverse("admin:syncing_pushrule_add"),
        )

    @admin.display(description="rule", ordering="name")
    def rule(self, obj):
        return ui.two_lines(ui.truncate(obj.name, 32), obj.tenant.name)

    @admin.display(description="when a webhook of")
    def source(self, obj):
        return ui.two_lines(ui.truncate(obj.source_integration, 28), obj.source_entity_type)

    @admin.display(description="writes")
    def target(self, obj):
        return ui.two_lines(ui.truncate(obj.target_integration, 28), obj.target_entity_type)

    @admin.display(description="last fired", ordering="last_fired_at")
    def last_fired(self, obj):
        return ui.two_lines(ui.when(obj.last_fired_at), ui.truncate(obj.last_outcome, 28) or None)
