from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from castiel.tenancy import services
from castiel.tenancy.models import ApiKey, Tenant


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


# What deactivating a tenant stops (each is enforced where the work is claimed; nothing is
# deleted, and reactivating resumes it all).
DEACTIVATION_STOPS = (
    "Unticked, the tenant is deactivated: its API keys are refused, its webhooks are "
    "rejected and stored events wait unprocessed, no sync is claimed (scheduled or "
    '"run now"), no change is pushed, no push rule writes, and no token is refreshed. '
    "Nothing is deleted: tick it again and everything resumes where it stopped."
)


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "is_active"]
        help_texts = {"is_active": DEACTIVATION_STOPS}


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ("name", "slug", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("id", "created_at")
    inlines = [ApiKeyInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            self.message_user(request, f"{obj} is deactivated. {DEACTIVATION_STOPS}")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "tenant__name")
    readonly_fields = ("id", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]
    list_select_related = ("tenant",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("tenant", "name")
        return ("tenant", "name", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("tenant", *self.readonly_fields)
        return ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(tenant=obj.tenant, name=obj.name)
        obj.pk = key.pk
        obj.prefix = key.prefix
        # Shown once, in this response only: never stored in a message, cookie or session.
        request._castiel_new_api_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        raw = getattr(request, "_castiel_new_api_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "api_key": obj,
            "raw_key": raw,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/tenancy/apikey_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description="Revoke the selected API keys (refused from now on)", permissions=["change"]
    )
    def revoke(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key)
            count += 1
        keys = "1 API key" if count == 1 else f"{count} API keys"
        self.message_user(request, f"{keys} revoked: refused from now on.", messages.SUCCESS)
