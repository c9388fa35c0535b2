from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from castiel import admin_helpers as ui
from integrations.models import Integration
from integrations.providers import registry
from integrations.services import (
    IntegrationStateError,
    integration_pause,
    integration_resume,
    integration_test_connection,
)

# How many test results are shown one by one before they are summarised.
MAX_TEST_MESSAGES = 20


class IntegrationAdminForm(forms.ModelForm):
    # A choice of the registered providers: an unknown slug cannot be typed in, and a row
    # whose provider folder was removed shows "not one of the available choices".
    provider = forms.ChoiceField(choices=registry.choices)

    class Meta:
        model = Integration
        fields = ["tenant", "provider", "name", "config", "enabled", "status", "status_reason"]


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationAdminForm
    list_display = ("name", "tenant", "provider", "enabled", "status", "updated_at")
    list_filter = ("provider", "enabled", "status", "tenant")
    search_fields = ("name", "tenant__name", "provider")
    readonly_fields = ("id", "created_at", "updated_at")
    list_select_related = ("tenant",)
    actions = ["test_connection", "pause", "resume"]

    def empty_state(self):
        return format_html(
            "No integrations yet. An integration connects one tenant to a provider of the "
            'catalogue: <a href="{}">add an integration</a>, then give it a credential.',
            reverse("admin:integrations_integration_add"),
        )

    @admin.action(
        description="Test the selected integrations' connections (one cheap call each)",
        permissions=["change"],
    )
    def test_connection(self, request, queryset):
        results = [(i, integration_test_connection(integration=i)) for i in queryset]
        for integration, result in results[:MAX_TEST_MESSAGES]:
            level = messages.SUCCESS if result.ok else messages.ERROR
            code = "" if result.ok else f" [{result.code}]"
            self.message_user(request, f"{integration}: {result.message}{code}", level)
        if len(results) > MAX_TEST_MESSAGES:
            failed = sum(1 for _, r in results[MAX_TEST_MESSAGES:] if not r.ok)
            self.message_user(
                request,
                f"…and {len(results) - MAX_TEST_MESSAGES} more ({failed} failed).",
                messages.WARNING if failed else messages.INFO,
            )

    @admin.action(
        description="Pause the selected integrations (no syncs, pushes or refreshes)",
        permissions=["change"],
    )
    def pause(self, request, queryset):
        self._change_state(request, queryset, integration_pause, "paused")

    @admin.action(description="Resume the selected integrations", permissions=["change"])
    def resume(self, request, queryset):
        self._change_state(request, queryset, integration_resume, "resumed")

    def _change_state(self, request, queryset, operation, done: str) -> None:
        changed = 0
        for integration in queryset:
            try:
                operation(integration=integration)
                changed += 1
            except IntegrationStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{ui.count(changed, 'integration')} {done}.", messages.SUCCESS)
