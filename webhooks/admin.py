from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from castiel import admin_helpers as ui
from webhooks import processing, registrations, signing
from webhooks.api.serializers import receive_url
from webhooks.models import WebhookBodySeen, WebhookEvent, WebhookRegistration
from webhooks.schemes import choices as scheme_choices
from webhooks.schemes import get_scheme
from webhooks.validation import validate_secret


class WebhookRegistrationForm(forms.ModelForm):
    # Write-only: the form never renders a stored secret, and the value goes straight to the
    # secret store through services (never into this table).
    new_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        label="New signing secret",
        help_text="Leave empty to keep the current secret. Setting it rotates the secret.",
    )
    generate_secret = forms.BooleanField(
        required=False,
        label="Generate a new signing secret",
        help_text="For schemes where you choose the secret (GitHub, Microsoft Graph, generic "
        "HMAC): Castiel makes a random one and shows it once, to paste into the provider.",
    )
    overlap_seconds = forms.IntegerField(
        required=False,
        min_value=0,
        label="Keep the previous secret for (seconds)",
        help_text="Empty: the default overlap. 0: the previous secret stops working now.",
    )
    scheme = forms.ChoiceField(choices=())

    class Meta:
        model = WebhookRegistration
        fields = ["tenant", *registrations.EDITABLE_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scheme"].choices = scheme_choices()

    def clean(self):
        cleaned = super().clean()
        secret = cleaned.get("new_secret")
        if cleaned.get("generate_secret"):
            if secret:
                self.add_error("generate_secret", "Paste a secret or generate one, not both.")
            elif (
                cleaned.get("scheme") and not get_scheme(cleaned["scheme"]).receiver_chooses_secret
            ):
                self.add_error(
                    "generate_secret",
                    "This provider issues its own signing secret: paste the one it shows.",
                )
        if secret and cleaned.get("scheme"):
            try:
                validate_secret(cleaned["scheme"], secret)
            except ValidationError as exc:
                self.add_error("new_secret", exc.message_dict["secret"])
        return cleaned


@admin.register(WebhookRegistration)
class WebhookRegistrationAdmin(admin.ModelAdmin):
    form = WebhookRegistrationForm
    # The URL to give the provider is on the registration's page (long, to copy whole).
    list_display = ("registration", "scheme", "integration", "is_active", "has_secret")
    list_display_links = ("registration",)
    list_filter = ("scheme", "is_active", "tenant")
    search_fields = ("name", "tenant__name", "id")
    list_select_related = ("tenant", "integration")
    readonly_fields = (
        "id",
        "receive_url",
        "has_secret",
        "secret_rotated_at",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="registration", ordering="name")
    def registration(self, obj):
        return ui.two_lines(ui.truncate(obj.name, 32), obj.tenant.name)

    def empty_state(self):
        return format_html(
            "No webhook registrations yet. A registration gives a provider a URL to post its "
            'events to and the secret they are signed with: <a href="{}">add one</a>, then '
            "paste its URL into the provider's webhook settings.",
            reverse("admin:webhooks_webhookregistration_add"),
        )

    @admin.display(description="URL for the provider")
    def receive_url(self, obj):
        # The path (or the full URL with CASTIEL_WEBHOOK_PUBLIC_BASE_URL set): the admin may be
        # served on another host than the one providers reach.
        return receive_url(None, obj.pk) if obj.pk else "—"

    @admin.display(boolean=True, description="Secret set")
    def has_secret(self, obj):
        return obj.has_secret

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret_name = signing.secret_name_for(obj.pk)
        super().save_model(request, obj, form, change)
        secret = form.cleaned_data.get("new_secret")
        if form.cleaned_data.get("generate_secret"):
            _registration, generated = registrations.registration_generate_secret(
                registration=obj, overlap_seconds=form.cleaned_data.get("overlap_seconds")
            )
            obj.refresh_from_db()
            # Shown once, in this response only: never in a message, cookie or session.
            request._castiel_generated_secret = generated
        elif secret:
            registrations.registration_rotate_secret(
                registration=obj,
                secret=secret,
                overlap_seconds=form.cleaned_data.get("overlap_seconds"),
            )
            obj.refresh_from_db()
            messages.info(request, "The signing secret was stored in the secret store.")

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_generated(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._show_generated(request, obj) or super().response_change(request, obj)

    def _show_generated(self, request, obj):
        secret = getattr(request, "_castiel_generated_secret", None)
        if secret is None:
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "New signing secret",
            "registration": obj,
            "secret": secret,
            "receive_url": receive_url(None, obj.pk),
            "previous_until": obj.previous_secret_expires_at,
            "opts": self.model._meta,
        }
        response = TemplateResponse(
            request, "admin/webhooks/webhookregistration/secret_generated.html", context
        )
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request, obj):
        registrations.registration_delete(registration=obj)

    def delete_queryset(self, request, queryset):
        for registration in queryset:
            registrations.registration_delete(registration=registration)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    # The delivery (when, to which registration, what), what the receiver answered and
    # what processing did; dedupe key, headers, body and actions are on the event's page.
    list_display = ("received", "registration", "event", "answer", "processing")
    list_display_links = ("received",)
    list_filter = ("outcome", "status", "provider", "reason", "registration__scheme", "tenant")
    search_fields = ("=id", "dedupe_key", "external_id", "event_type", "correlation_id")
    list_select_related = ("registration", "tenant")
    date_hierarchy = "received_at"
    actions = ["replay"]
    exclude = ("body",)
    readonly_fields = [
        field.name for field in WebhookEvent._meta.fields if field.name != "body"
    ] + ["body_display"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="received", ordering="received_at")
    def received(self, obj):
        return ui.when(obj.received_at)

    @admin.display(description="event", ordering="event_type")
    def event(self, obj):
        return ui.two_lines(
            ui.truncate(obj.event_type or "—", 30),
            ui.truncate(obj.external_id, 30) if obj.external_id else None,
        )

    @admin.display(description="answer", ordering="outcome")
    def answer(self, obj):
        shown = ui.badge(obj.outcome)
        detail = " ".join(str(p) for p in (obj.http_status, obj.reason) if p)
        return ui.two_lines(shown, ui.truncate(detail, 28) if detail else None)

    @admin.display(description="processing", ordering="status")
    def processing(self, obj):
        if not obj.status:
            return "—"
        attempts = ui.count(obj.attempts, "attempt") if obj.attempts else None
        return ui.two_lines(ui.badge(obj.status), attempts)

    def empty_state(self):
        return format_html(
            "No webhook events yet — give the provider the URL of one of the "
            '<a href="{}">webhook registrations</a>: every delivery to it is listed here, '
            "accepted or not.",
            reverse("admin:webhooks_webhookregistration_changelist"),
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("body", "headers", "actions")
        return queryset

    @admin.display(description="Body")
    def body_display(self, obj):
        raw = bytes(obj.body or b"")
        try:
            raw = get_scheme(obj.registration.scheme).display_body(raw)
        except KeyError:
            pass
        return format_html("<pre>{}</pre>", raw.decode("utf-8", errors="replace")[:100_000])

    @admin.action(
        description="Replay the selected events (process the stored deliveries again)",
        permissions=["change"],
    )
    def replay(self, request, queryset):
        replayed, refused = 0, 0
        for event in queryset:
            try:
                processing.event_replay(event=event)
                replayed += 1
            except processing.ReplayRefused:
                refused += 1
        message = f"{ui.count(replayed, 'event')} queued to be processed again"
        if refused:
            message += f"; {ui.count(refused, 'event')} could not be replayed (never accepted)"
        messages.info(request, message + ".")


@admin.register(WebhookBodySeen)
class WebhookBodySeenAdmin(admin.ModelAdmin):
    """Read-only: why a delivery of a body-signing scheme (GitHub) was answered as a
    duplicate — the same signed bytes were accepted before, as the linked event."""

    list_display = ("seen_at", "registration", "body", "first_event")
    list_filter = ("registration",)
    search_fields = ("=body_sha256",)
    list_select_related = ("registration", "event")
    readonly_fields = ("registration", "body_sha256", "event", "seen_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="first accepted as")
    def first_event(self, obj):
        return ui.link("webhooks", "webhookevent", obj.event_id, ui.truncate(obj.event, 30))

    @admin.display(description="body SHA-256", ordering="body_sha256")
    def body(self, obj):
        return ui.truncate(obj.body_sha256, 16)


# The model's plural ("webhook body seens") is the webhooks app's to fix in its Meta; the admin
# shows the right words meanwhile (display only: migrations read the Meta as declared).
WebhookBodySeen._meta.verbose_name_plural = "webhook bodies seen"
