"""Operator views: credentials masked (never a secret value), refresh now, revoke, connect."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from credentials.connect import ConnectError, oauth_connect_start
from credentials.models import Credential, OAuthState, StoredSecret, TokenRefreshAudit
from credentials.refresh import credential_refresh
from credentials.services import credential_revoke
from integrations.models import Integration
from integrations.providers import registry


class TokenRefreshAuditInline(admin.TabularInline):
    model = TokenRefreshAudit
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "trigger",
        "outcome",
        "error_code",
        "message",
        "attempts",
        "duration_ms",
        "correlation_id",
    )
    readonly_fields = fields
    ordering = ("-created_at",)
    max_num = 0


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    # Which secret fields it holds and its failure count are on the credential's page.
    list_display = ("credential", "type", "status_badge", "expires", "last_refreshed")
    list_display_links = ("credential",)
    list_filter = ("type", "status", "tenant")
    search_fields = ("integration__name", "tenant__name")
    list_select_related = ("integration", "tenant")
    actions = ["refresh_now", "revoke"]
    inlines = [TokenRefreshAuditInline]
    fields = (
        "id",
        "tenant",
        "integration",
        "type",
        "status",
        "status_reason",
        "settings",
        "masked_secret",
        "secret_name",
        "secret_version",
        "scopes",
        "expires_at",
        "refresh_expires_at",
        "last_refreshed_at",
        "failure_count",
        "next_retry_at",
        "last_error",
        "created_at",
        "updated_at",
        "revoked_at",
    )
    readonly_fields = fields
    change_list_template = "admin/credentials/credential/change_list.html"

    @admin.display(description="integration", ordering="integration__name")
    def credential(self, obj):
        return ui.two_lines(ui.truncate(obj.integration, 32), obj.tenant.name)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        shown = ui.badge(obj.status)
        if obj.failure_count:
            return ui.two_lines(shown, ui.count(obj.failure_count, "failed refresh"))
        return shown

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj):
        return ui.when(obj.expires_at)

    @admin.display(description="last refreshed", ordering="last_refreshed_at")
    def last_refreshed(self, obj):
        return ui.when(obj.last_refreshed_at)

    def empty_state(self):
        return format_html(
            "No credentials yet. A credential is stored through the API or by connecting an "
            '<a href="{}">integration</a> with OAuth2 ("Connect with OAuth2" above).',
            reverse("admin:integrations_integration_changelist"),
        )

    @admin.display(description="Secret")
    def masked_secret(self, obj):
        names = obj.secret_fields or []
        if not names:
            return "—"
        return format_html_join(", ", "{}: ********", ((name,) for name in names))

    def has_add_permission(self, request):
        return False  # secrets are entered through the API or the connect flow

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: it also deletes the secret from the store

    def get_urls(self):
        return [
            path(
                "connect/",
                self.admin_site.admin_view(self.connect_view),
                name="credentials_credential_connect",
            ),
            *super().get_urls(),
        ]

    @admin.action(
        description="Refresh the selected credentials' tokens now", permissions=["change"]
    )
    def refresh_now(self, request, queryset):
        for credential in queryset:
            if not credential.kind.refreshable:
                self.message_user(
                    request, f"{credential}: this type has no token to refresh.", messages.WARNING
                )
                continue
            result = credential_refresh(
                credential_id=credential.pk, trigger=TokenRefreshAudit.Trigger.MANUAL, force=True
            )
            level = messages.SUCCESS if result.refreshed else messages.WARNING
            detail = f" ({result.error_code}: {result.message})" if result.error_code else ""
            self.message_user(request, f"{credential}: {result.outcome}{detail}", level)

    # "change", not "delete": credentials are never deleted here (revoking also deletes the
    # secret from the store), so no one holds a delete permission that counts.
    @admin.action(description="Revoke selected credentials", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for credential in queryset.exclude(status=Credential.Status.REVOKED):
            credential_revoke(credential=credential, reason="revoked in the admin")
            count += 1
        self.message_user(
            request,
            f"{ui.count(count, 'credential')} revoked; their secrets are deleted from the store.",
            messages.SUCCESS,
        )

    def has_connect_permission(self, request) -> bool:
        # Connecting stores a new credential for the integration (replacing its tokens):
        # a write, for those who may change credentials.
        return self.has_change_permission(request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_connect": self.has_connect_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def connect_view(self, request):
        if not self.has_connect_permission(request):
            raise PermissionDenied
        form = ConnectForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            integration = form.cleaned_data["integration"]
            return_url = reverse("admin:credentials_credential_changelist")
            try:
                start = oauth_connect_start(
                    integration=integration,
                    redirect_uri=_redirect_uri(request),
                    return_url=return_url,
                    client_secret=form.cleaned_data.get("client_secret") or None,
                )
            except ConnectError as exc:
                form.add_error(None, exc.message)
            else:
                return HttpResponseRedirect(start.authorize_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Connect an integration with OAuth2",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/credentials/credential/connect.html", context)


def _oauth_integrations():
    slugs = [
        p.slug for p in registry.all_providers() if "oauth2_authorization_code" in p.auth_types
    ]
    return Integration.objects.filter(provider__in=slugs).select_related("tenant")


class ConnectForm(forms.Form):
    integration = forms.ModelChoiceField(queryset=Integration.objects.none())
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Only when setting or changing the integration's OAuth2 client secret.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["integration"].queryset = _oauth_integrations()


def _redirect_uri(request) -> str:
    from credentials.api.views import redirect_uri_for

    return redirect_uri_for(request)


@admin.register(TokenRefreshAudit)
class TokenRefreshAuditAdmin(admin.ModelAdmin):
    list_display = ("created", "credential_name", "trigger", "outcome_badge", "took")
    list_display_links = ("created",)
    list_filter = ("trigger", "outcome", "error_code")
    search_fields = ("correlation_id", "credential__integration__name")
    list_select_related = ("credential", "credential__integration")
    readonly_fields = [f.name for f in TokenRefreshAudit._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="at", ordering="created_at")
    def created(self, obj):
        return ui.when(obj.created_at)

    @admin.display(description="credential", ordering="credential__integration__name")
    def credential_name(self, obj):
        return ui.truncate(obj.credential, 30)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        shown = ui.badge(obj.outcome)
        return ui.two_lines(shown, ui.truncate(obj.error_code, 24)) if obj.error_code else shown

    @admin.display(description="took", ordering="duration_ms")
    def took(self, obj):
        seconds = obj.duration_ms / 1000 if obj.duration_ms is not None else None
        attempts = ui.count(obj.attempts, "attempt") if obj.attempts and obj.attempts > 1 else None
        return ui.two_lines(ui.duration(seconds), attempts)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OAuthState)
class OAuthStateAdmin(admin.ModelAdmin):
    list_display = ("for_integration", "created", "expires", "used")
    list_display_links = ("for_integration",)
    list_filter = ("pkce",)
    readonly_fields = (
        "id",
        "tenant",
        "integration",
        "redirect_uri",
        "scopes",
        "pkce",
        "return_url",
        "created_at",
        "expires_at",
        "used_at",
    )
    exclude = ("state_hash",)

    @admin.display(description="integration", ordering="integration__name")
    def for_integration(self, obj):
        return ui.two_lines(ui.truncate(obj.integration, 32), obj.tenant.name)

    @admin.display(description="started", ordering="created_at")
    def created(self, obj):
        return ui.when(obj.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj):
        return ui.when(obj.expires_at)

    @admin.display(description="used", ordering="used_at")
    def used(self, obj):
        return ui.when(obj.used_at)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StoredSecret)
class StoredSecretAdmin(admin.ModelAdmin):
    """The encrypted database secret store's rows: names and versions only — the ciphertext
    is never shown, and nothing is editable (credentials and registrations own their secrets:
    deleting a version here would break them)."""

    list_display = ("name", "version", "created_at", "expires_on", "not_before")
    search_fields = ("=name",)
    fields = ("name", "version", "tags", "created_at", "expires_on", "not_before")
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
