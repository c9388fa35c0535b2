from django.contrib import admin
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from ratelimit.models import IntegrationUsage, LimiterCounter, RateLimitOverride
from ratelimit.selectors import usage_for


@admin.register(RateLimitOverride)
class RateLimitOverrideAdmin(admin.ModelAdmin):
    list_display = ("applies_to", "level_name", "allowance", "set_by")
    list_display_links = ("applies_to",)
    list_filter = ("level", "set_by", "tenant")
    search_fields = ("tenant__name", "integration__name", "operation", "note")
    list_select_related = ("tenant", "integration")
    autocomplete_fields = ()
    readonly_fields = ("id", "set_by", "created_at", "updated_at")
    fields = (
        "tenant",
        "integration",
        "level",
        "operation",
        "limit",
        "window_seconds",
        "note",
        *readonly_fields,
    )

    @admin.display(description="applies to", ordering="tenant__name")
    def applies_to(self, obj):
        scope = obj.integration.name if obj.integration_id else "all integrations"
        return ui.two_lines(ui.truncate(scope, 32), obj.tenant.name)

    @admin.display(description="level", ordering="level")
    def level_name(self, obj):
        return obj.level + (f" · {obj.operation}" if obj.operation else "")

    @admin.display(description="allowance", ordering="limit")
    def allowance(self, obj):
        return f"{obj.limit} per {obj.window_seconds:g} s"

    def save_model(self, request, obj, form, change):
        # Saved here, the override is the operator's: it may raise a limit (a tenant's own,
        # set through the API, only ever lowers one), and the API can no longer change it.
        obj.set_by = RateLimitOverride.SetBy.OPERATOR
        super().save_model(request, obj, form, change)


def _level_name(level) -> str:
    return level.level + (f" · {level.operation}" if level.operation else "")


@admin.register(IntegrationUsage)
class IntegrationUsageAdmin(admin.ModelAdmin):
    """Usage and headroom per level, read live from the limiter (nothing here is editable:
    change limits with overrides)."""

    list_display = ("integration", "tenant_usage", "integration_usage", "throttle")
    list_display_links = ("integration",)
    list_filter = ("provider", "tenant")
    search_fields = ("name", "tenant__name")
    list_select_related = ("tenant",)
    fields = ("name", "tenant", "provider", "throttle", "levels")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def _usage(self, obj):
        # One read per row and column would be wasteful: remember it on the object.
        if not hasattr(obj, "_ratelimit_usage"):
            obj._ratelimit_usage = usage_for(obj)[1]
        return obj._ratelimit_usage

    @admin.display(description="integration", ordering="name")
    def integration(self, obj):
        return ui.two_lines(ui.truncate(obj.name, 32), f"{obj.tenant.name} · {obj.provider}")

    @admin.display(description="tenant level")
    def tenant_usage(self, obj):
        level = self._usage(obj).levels[0]
        return f"{level.used} / {level.effective_limit} per {level.limit.window:g}s"

    @admin.display(description="integration level")
    def integration_usage(self, obj):
        level = self._usage(obj).levels[1]
        return f"{level.used} / {level.effective_limit} per {level.limit.window:g}s"

    @admin.display(description="provider feedback")
    def throttle(self, obj):
        usage = self._usage(obj)
        parts = []
        if usage.degraded:
            parts.append("DEGRADED: Redis unreachable, local limits")
        if usage.state.multiplier < 1:
            parts.append(f"limits at {usage.state.multiplier:.0%}")
        if usage.state.blocked_until:
            parts.append(f"blocked for {usage.state.blocked_until - usage.now:.0f}s")
        return "; ".join(parts) or "healthy"

    @admin.display(description="usage per level")
    def levels(self, obj):
        rows = format_html_join(
            "",
            # format_html escapes its arguments into strings first: format numbers here.
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    _level_name(level),
                    level.used,
                    level.limit.limit,
                    level.effective_limit,
                    f"{level.limit.window:g}s",
                    level.remaining,
                    f"{level.headroom:.0%}",
                    level.limit.source,
                )
                for level in self._usage(obj).levels
            ),
        )
        return format_html(
            "<table><thead><tr><th>level</th><th>used</th><th>limit</th><th>effective</th>"
            "<th>window</th><th>remaining</th><th>headroom</th><th>source</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )


@admin.register(LimiterCounter)
class LimiterCounterAdmin(admin.ModelAdmin):
    """The database backend's counters (read-only: the limiter owns them; idle rows are
    deleted by the hourly cleanup)."""

    list_display = ("key", "expires_at")
    search_fields = ("key",)
    readonly_fields = ("key", "data", "expires_at")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
