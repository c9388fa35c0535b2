"""The outbox and its dead letters: inspect, replay, discard."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from syncing.models import DeadLetter, OutboundChange
from syncing.outbound import deadletters


def _attempts_table(log) -> str:
    if not log:
        return "—"
    keys = sorted({key for entry in log for key in entry})
    head = format_html_join("", "<th>{}</th>", ((key,) for key in keys))
    rows = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((ui.short_json(e.get(k)),) for k in keys)),)
            for e in log
        ),
    )
    return format_html(
        '<table class="castiel-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        head,
        rows,
    )


class SuspectFilter(admin.SimpleListFilter):
    title = "worker stopped"
    parameter_name = "suspect"

    def lookups(self, request, model_admin):
        return [("yes", "During an attempt (pushed alone since)"), ("no", "Never")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(lost_attempts__gt=0)
        if self.value() == "no":
            return queryset.filter(lost_attempts=0)
        return queryset


@admin.register(OutboundChange)
class OutboundChangeAdmin(admin.ModelAdmin):
    # Timing (next attempt, finished) and the attempt log are on the change's page.
    list_display = ("created", "change", "record", "status_badge", "attempts", "origin_actor")
    list_display_links = ("created",)
    list_filter = (
        "status",
        SuspectFilter,
        "operation",
        "origin",
        "entity_type",
        "tenant",
        "integration",
    )
    search_fields = ("=id", "=record_id", "=external_id", "=remote_id", "=correlation_id")
    list_select_related = ("integration",)
    show_full_result_count = False
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in OutboundChange._meta.fields if f.name != "attempt_log"]
        return [*fields, "record", "attempts_table"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return ui.when(obj.created_at)

    @admin.display(description="change", ordering="operation")
    def change(self, obj):
        return ui.two_lines(obj.operation, obj.entity_type)

    @admin.display(description="record")
    def record(self, obj):
        label = ui.truncate(obj.external_id or obj.record_id, 24)
        return ui.link("syncing", "record", obj.record_id, label)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return ui.badge(obj.status, obj.get_status_display().split(" (")[0])

    @admin.display(description="origin", ordering="origin")
    def origin_actor(self, obj):
        return ui.two_lines(obj.origin, ui.truncate(obj.actor, 24) if obj.actor else None)

    def empty_state(self):
        return format_html(
            "No outbound changes. Each local change to a record — saved in "
            '<a href="{}">records</a>, through the API, by a push rule or a resolved '
            "conflict — is queued here and pushed to the provider.",
            reverse("admin:syncing_record_changelist"),
        )

    @admin.display(description="attempt log")
    def attempts_table(self, obj):
        return _attempts_table(obj.attempt_log)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("created", "change", "record", "error", "attempts", "status_badge")
    list_display_links = ("created",)
    list_filter = ("status", "error_code", "operation", "retryable", "tenant", "integration")
    search_fields = ("=id", "=record_id", "=external_id", "error_message", "=correlation_id")
    list_select_related = ("integration",)
    change_form_template = "admin/syncing/deadletter/change_form.html"
    actions = ["replay", "discard"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status",
                    "integration",
                    "operation",
                    "entity_type",
                    "record",
                    "change_link",
                    "error_code",
                    "error_message",
                    "retryable",
                    "attempts",
                    "created_at",
                    "resolved_at",
                    "resolved_by",
                )
            },
        ),
        ("Request", {"fields": ("request_display",)}),
        (
            "Response",
            {"fields": ("response_status", "response_headers_display", "response_body_display")},
        ),
        ("Attempts", {"fields": ("attempts_table",)}),
        ("Tracing", {"fields": ("id", "correlation_id", "execution_id")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, spec in self.fieldsets for name in spec["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        # Actions run without change permission (they go through the services).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="record")
    def record(self, obj):
        return ui.link("syncing", "record", obj.record_id, obj.external_id or obj.record_id)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return ui.when(obj.created_at)

    @admin.display(description="change", ordering="operation")
    def change(self, obj):
        return ui.two_lines(obj.operation, obj.entity_type)

    @admin.display(description="error", ordering="error_code")
    def error(self, obj):
        status = f"HTTP {obj.response_status}" if obj.response_status else None
        return ui.two_lines(ui.truncate(obj.error_code, 24), status)

    def empty_state(self):
        return format_html(
            "No dead letters: every push succeeded or is still being retried (see "
            '<a href="{}">outbound changes</a>). A push that fails for good lands here, '
            "with its request and response, to replay or discard.",
            reverse("admin:syncing_outboundchange_changelist"),
        )

    @admin.display(description="outbound change")
    def change_link(self, obj):
        return ui.link("syncing", "outboundchange", obj.change_id, obj.change_id)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        if obj.resolved_by:
            return ui.two_lines(ui.badge(obj.status), ui.truncate(obj.resolved_by, 24))
        return ui.badge(obj.status)

    @admin.display(description="request")
    def request_display(self, obj):
        return ui.pretty_json(obj.request) if obj.request else "—"

    @admin.display(description="response headers")
    def response_headers_display(self, obj):
        return ui.pretty_json(obj.response_headers) if obj.response_headers else "—"

    @admin.display(description="response body")
    def response_body_display(self, obj):
        if not obj.response_body:
            return "—"
        return format_html('<pre class="castiel-pre">{}</pre>', obj.response_body)

    @admin.display(description="attempt log")
    def attempts_table(self, obj):
        return _attempts_table(obj.attempt_log)

    # -- replay / discard --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            *(
                path(
                    f"<uuid:letter_id>/{verb}/",
                    wrap(self.resolve_view),
                    {"verb": verb},
                    name=f"syncing_deadletter_{verb}",
                )
                for verb in ("replay", "discard")
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request, letter_id, verb):
        letter = get_object_or_404(DeadLetter, pk=letter_id)
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:syncing_deadletter_change", args=[letter.pk])
            )
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        bulk = (
            deadletters.dead_letters_replay
            if verb == "replay"
            else deadletters.dead_letters_discard
        )
        self._resolve(request, [letter], bulk, "replayed" if verb == "replay" else "discarded")
        return HttpResponseRedirect(reverse("admin:syncing_deadletter_change", args=[letter.pk]))

    def has_resolve_permission(self, request):
        # The page is read-only (no change permission), but replaying and discarding are
        # writes: they need the model's change permission all the same.
        return request.user.has_perm("syncing.change_deadletter")

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_resolve"] = self.has_resolve_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    def _resolve(self, request, letters, bulk, verb):
        done, skipped = bulk(dead_letters=list(letters), by=f"admin:{request.user}")
        if done:
            then = (
                "; their changes are pushed again"
                if verb == "replayed"
                else "; the records' later changes go ahead"
            )
            self.message_user(
                request, f"{ui.count(len(done), 'dead letter')} {verb}{then}.", messages.SUCCESS
            )
        for dead_letter_id, reason in skipped.items():
            self.message_user(request, f"{dead_letter_id}: {reason}", messages.WARNING)

    @admin.action(
        description="Replay the selected dead letters (push again)", permissions=["resolve"]
    )
    def replay(self, request, queryset):
        self._resolve(request, queryset, deadletters.dead_letters_replay, "replayed")

    @admin.action(
        description="Discard the selected dead letters (give up; later changes go ahead)",
        permissions=["resolve"],
    )
    def discard(self, request, queryset):
        self._resolve(request, queryset, deadletters.dead_letters_discard, "discarded")
