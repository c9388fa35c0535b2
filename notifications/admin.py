"""Admin: channels (secrets write-only, "send a test notification"), subscriptions, incidents
(acknowledge, resolve by hand), deliveries (replay) and digests. Every action needs the
model's *change* permission."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from castiel import admin_helpers as ui
from castiel.admin_helpers import badge, duration, pretty_json
from castiel.events import Severity
from notifications import channels, delivery, incidents, services
from notifications.models import KIND_CHOICES, Channel, Delivery, Digest, Incident, Subscription

# -- channels ------------------------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    url = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"size": 80, "autocomplete": "off"}),
        help_text="Slack / Teams: the webhook URL — write-only, kept in the secret store; leave "
        "empty to keep the stored one. Signed webhook: the receiving URL.",
    )
    recipients_text = forms.CharField(
        label="Recipients",
        required=False,
        help_text="Email: addresses separated by commas.",
    )
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signed webhook: whsec_… — write-only; empty generates one (new channels) or "
        "keeps the stored one.",
    )

    class Meta:
        model = Channel
        fields = (
            "tenant",
            "name",
            "type",
            "enabled",
            "integration",
            "conversation",
            "rate_limit_per_minute",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].queryset = self.fields["integration"].queryset.filter(
            provider="slack"
        )
        if not self.instance._state.adding:
            self.fields["type"].disabled = True
            self.fields["tenant"].disabled = True
            self.initial["recipients_text"] = ", ".join(self.instance.recipients or [])
            if self.instance.type == Channel.Type.WEBHOOK:
                self.initial["url"] = self.instance.url

    def channel_data(self) -> dict:
        data = {
            "enabled": self.cleaned_data.get("enabled", True),
            "rate_limit_per_minute": self.cleaned_data.get("rate_limit_per_minute") or 0,
        }
        if self.cleaned_data.get("url"):
            data["url"] = self.cleaned_data["url"]
        if self.cleaned_data.get("recipients_text"):
            data["recipients"] = self.cleaned_data["recipients_text"]
        if self.cleaned_data.get("signing_secret"):
            data["signing_secret"] = self.cleaned_data["signing_secret"]
        for field in ("integration", "conversation"):
            if self.cleaned_data.get(field):
                data[field] = self.cleaned_data[field]
        return data

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("type") or self.instance.type
        if kind not in channels.TYPES:
            return cleaned
        data = self.channel_data()
        existing = None if self.instance._state.adding else self.instance
        tenant = cleaned.get("tenant") if existing is None else existing.tenant
        _public, _secret, errors = channels.for_type(kind).clean(
            data, channel=existing, tenant=tenant
        )
        for field, message in errors.items():
            target = {"recipients": "recipients_text"}.get(field, field)
            self.add_error(target if target in self.fields else None, message)
        return cleaned


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("name", "tenant", "type", "enabled", "target_hint", "health", "last_success_at")
    list_filter = ("type", "enabled", "tenant")
    search_fields = ("name", "tenant__name", "=id")
    list_select_related = ("tenant",)
    readonly_fields = (
        "id",
        "target_hint",
        "has_secret",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "last_error",
        "created_at",
        "updated_at",
    )
    actions = ["send_test"]

    @admin.display(boolean=True, description="Secret stored")
    def has_secret(self, obj):
        return obj.has_secret

    @admin.display(description="Health")
    def health(self, obj):
        if obj.consecutive_failures:
            return badge("failed", f"{obj.consecutive_failures} failure(s) in a row")
        return badge("ok", "ok")

    def save_model(self, request, obj, form, change):
        data = form.channel_data()
        if change:
            saved = services.channel_update(channel=obj, name=form.cleaned_data["name"], **data)
        else:
            saved, generated = services.channel_create(
                tenant=form.cleaned_data.get("tenant"),
                name=form.cleaned_data["name"],
                type=form.cleaned_data["type"],
                **data,
            )
            if generated:  # shown once, in this response only
                request._castiel_generated_secret = generated
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_castiel_generated_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "Signing secret",
            "channel": obj,
            "secret": secret,
            "opts": self.model._meta,
        }
        response = TemplateResponse(
            request, "admin/notifications/channel/secret_generated.html", context
        )
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request, obj):
        services.channel_delete(channel=obj)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            services.channel_delete(channel=channel)

    @admin.action(
        description="Send a test notification (shows the channel's answer)", permissions=["change"]
    )
    def send_test(self, request, queryset):
        for channel in queryset[:10]:
            sent = delivery.send_test(channel)
            answer = f"HTTP {sent.response_status}" if sent.response_status else "no answer"
            body = f": {sent.response_body[:200]}" if sent.response_body else ""
            if sent.status == Delivery.Status.DELIVERED:
                messages.success(request, f"{channel.name}: delivered — {answer}{body}")
            else:
                messages.error(
                    request, f"{channel.name}: failed — {answer}{body} ({sent.last_error[:300]})"
                )


# -- subscriptions -------------------------------------------------------------------------------


class SubscriptionForm(forms.ModelForm):
    event_kinds = forms.MultipleChoiceField(
        choices=KIND_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every kind.",
    )
    min_severity = forms.TypedChoiceField(
        choices=[(s.value, s.label) for s in Severity], coerce=int, initial=Severity.WARNING.value
    )

    class Meta:
        model = Subscription
        fields = (
            "tenant",
            "name",
            "channel",
            "enabled",
            "event_kinds",
            "min_severity",
            "integrations",
            "mode",
            "notify_resolved",
            "digest_every",
            "digest_minutes",
            "digest_time",
            "timezone",
            "quiet_start",
            "quiet_end",
            "critical_during_quiet",
        )

    def clean(self):
        cleaned = super().clean()
        errors = services.subscription_errors(cleaned, tenant=cleaned.get("tenant"))
        for integration in cleaned.get("integrations") or []:
            if integration.tenant_id != getattr(cleaned.get("tenant"), "pk", None) and cleaned.get(
                "tenant"
            ):
                errors["integrations"] = "Only integrations of the subscription's tenant."
        for field, message in errors.items():
            self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = (
        "name",
        "tenant",
        "channel",
        "mode",
        "min_severity",
        "enabled",
        "next_digest_at",
    )
    list_filter = ("mode", "enabled", "tenant")
    search_fields = ("name", "tenant__name", "channel__name")
    list_select_related = ("tenant", "channel")
    filter_horizontal = ("integrations",)
    readonly_fields = ("digest_from", "next_digest_at", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        services.schedule_digest(obj, now=timezone.now())
        super().save_model(request, obj, form, change)


# -- incidents, deliveries, digests ----------------------------------------------------------


class ReadOnlyMixin:
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()


@admin.register(Incident)
class IncidentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Five columns fit beside the sidebar and the filters at 1280 px; the first-seen and
    # resolution times are on the incident's page.
    list_display = ("title_display", "state_badge", "subject_cell", "occurrences", "last_seen")
    list_filter = ("state", "kind", "severity", "tenant")
    search_fields = ("fingerprint", "subject_label", "subject_id", "=id")
    list_select_related = ("tenant",)
    date_hierarchy = "first_seen_at"
    actions = ["acknowledge", "resolve"]
    exclude = ("details",)
    extra_readonly = ("details_display",)

    @admin.display(description="Incident", ordering="kind")
    def title_display(self, obj):
        return ui.two_lines(ui.truncate(obj.title, 36), self.severity_label(obj))

    @admin.display(description="About", ordering="subject_label")
    def subject_cell(self, obj):
        return ui.two_lines(ui.truncate(obj.subject_label or obj.subject_id, 30), obj.tenant or "")

    @admin.display(description="Last seen", ordering="last_seen_at")
    def last_seen(self, obj):
        return ui.when(obj.last_seen_at)

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        css = {"open": "failed", "acknowledged": "open", "resolved": "resolved"}[obj.state]
        return badge(css, obj.state)

    @admin.display(description="Severity", ordering="severity")
    def severity_label(self, obj):
        try:
            return Severity(obj.severity).label
        except ValueError:
            return obj.severity

    @admin.display(description="Details")
    def details_display(self, obj):
        return pretty_json(obj.details)

    @admin.action(
        description="Acknowledge (no reminders while someone is on it)", permissions=["change"]
    )
    def acknowledge(self, request, queryset):
        done = sum(incidents.acknowledge(i, user=request.user.get_username()) for i in queryset)
        messages.info(request, f"Acknowledged {done} incident(s).")

    @admin.action(
        description="Resolve by hand (sends the resolution notices)", permissions=["change"]
    )
    def resolve(self, request, queryset):
        done = sum(
            incidents.resolve_by_hand(i, user=request.user.get_username())
            for i in queryset.filter(state__in=Incident.LIVE)
        )
        messages.info(request, f"Resolved {done} incident(s).")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Five columns fit at 1280 px; the id, the response status and the exact times are on
    # the delivery's page.
    list_display = ("kind_cell", "status_badge", "attempts", "took", "queued")
    list_filter = ("status", "kind", "channel__type", "tenant")
    search_fields = ("=id", "=message_id", "channel__name", "last_error")
    list_select_related = ("channel",)
    actions = ["replay"]
    exclude = ("message",)
    extra_readonly = ("message_display",)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        css = {"delivered": "succeeded", "sending": "running", "cancelled": "skipped"}
        return badge(css.get(obj.status, obj.status), obj.get_status_display())

    @admin.display(description="Notification", ordering="kind")
    def kind_cell(self, obj):
        return ui.two_lines(ui.truncate(obj.kind, 30), ui.truncate(obj.channel, 30))

    @admin.display(description="Queued", ordering="queued_at")
    def queued(self, obj):
        return ui.when(obj.queued_at)

    @admin.display(description="Took")
    def took(self, obj):
        return duration(obj.duration_ms / 1000) if obj.duration_ms is not None else "—"

    @admin.display(description="Message")
    def message_display(self, obj):
        return pretty_json(obj.message)

    @admin.action(description="Replay (queue the dead delivery again)", permissions=["change"])
    def replay(self, request, queryset):
        done = sum(delivery.replay(d) for d in queryset)
        messages.info(
            request, f"Queued {done} delivery(ies) again; only dead or cancelled ones are replayed."
        )


@admin.register(Digest)
class DigestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("subscription_cell", "period", "opened", "resolved", "still_open")
    list_filter = ("tenant",)
    list_select_related = ("subscription", "tenant")

    @admin.display(description="Subscription", ordering="subscription__name")
    def subscription_cell(self, obj):
        return ui.two_lines(ui.truncate(obj.subscription, 30), obj.tenant)

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj):
        return ui.two_lines(ui.when(obj.period_start), ui.when(obj.period_end))
