"""Admin: event subscriptions — a tenant's application events to its signed-webhook channels
(notifications/event_webhooks.py). Their deliveries are listed, and replayed, with every other
delivery (*Notifications → Deliveries*, kind "Event").

Registered from ``NotificationsConfig.ready`` (imported there), beside the incident
notifications' admin in ``notifications/admin.py``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from notifications import event_webhooks
from notifications.models import EventSubscription


class EventSubscriptionForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in event_webhooks.EVENT_TYPE_VALUES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every type except webhook.received (sent only when ticked).",
    )

    class Meta:
        model = EventSubscription
        fields = ("tenant", "name", "channel", "enabled", "event_types", "integrations")

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        error = event_webhooks.channel_error(cleaned.get("channel"), tenant)
        if error and "channel" not in self.errors:
            self.add_error("channel", error)
        for integration in cleaned.get("integrations") or []:
            if tenant is not None and integration.tenant_id != tenant.pk:
                self.add_error("integrations", "Only integrations of the subscription's tenant.")
                break
        cleaned["event_types"] = sorted(set(cleaned.get("event_types") or []))
        return cleaned


@admin.register(EventSubscription)
class EventSubscriptionAdmin(admin.ModelAdmin):
    form = EventSubscriptionForm
    list_display = ("name", "tenant", "channel", "types", "enabled")
    list_filter = ("enabled", "tenant")
    search_fields = ("name", "tenant__name", "channel__name")
    list_select_related = ("tenant", "channel")
    filter_horizontal = ("integrations",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Event types")
    def types(self, obj):
        return ", ".join(obj.event_types) or "all but webhook.received"
