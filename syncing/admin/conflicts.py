"""Conflicts: base, local and remote side by side, resolved field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from castiel import admin_helpers as ui
from syncing import services
from syncing.models import Conflict

MISSING = object()
SIDES = ("local", "remote")


@dataclass
class FieldRow:
    index: int
    name: str
    base: Any
    local: Any
    remote: Any

    @property
    def differs(self) -> bool:
        return self.local != self.remote

    @property
    def local_changed(self) -> bool:
        return self.local != self.base

    @property
    def remote_changed(self) -> bool:
        return self.remote != self.base

    @property
    def both_changed(self) -> bool:
        return self.differs and self.local_changed and self.remote_changed

    @property
    def default(self) -> str | None:
        """The side that changed when only one did; no default when both did."""
        if not self.differs or self.both_changed:
            return None
        return "remote" if self.remote_changed else "local"

    chosen: str | None = None  # the side ticked in the form

    @staticmethod
    def _shown(value) -> str:
        return "(absent)" if value is MISSING else ui.short_json(value, limit=400)

    @property
    def base_text(self) -> str:
        return self._shown(self.base)

    @property
    def local_text(self) -> str:
        return self._shown(self.local)

    @property
    def remote_text(self) -> str:
        return self._shown(self.remote)


def field_rows(conflict: Conflict) -> list[FieldRow]:
    base, local, remote = (
        conflict.base_data or {},
        conflict.local_data or {},
        conflict.remote_data or {},
    )
    names = sorted(set(base) | set(local) | set(remote))
    return [
        FieldRow(
            index=i,
            name=name,
            base=base.get(name, MISSING),
            local=local.get(name, MISSING),
            remote=remote.get(name, MISSING),
        )
        for i, name in enumerate(names)
    ]


def merge(rows: list[FieldRow], choices: dict[str, str]) -> dict:
    """The record as the operator chose it: per field the chosen side's value (a field absent
    on the chosen side stays absent)."""
    merged = {}
    for row in rows:
        side = choices.get(row.name, "local") if row.differs else "local"
        value = getattr(row, side)
        if value is not MISSING:
            merged[row.name] = value
    return merged


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    list_display = ("created", "record", "task", "changed_fields", "status_badge")
    list_display_links = ("created",)
    list_filter = ("status", "resolution", "entity_type", "tenant")
    search_fields = ("=id", "=record_id", "=external_id")
    list_select_related = ("task", "task__integration")
    actions = ["take_remote", "keep_local"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="found", ordering="created_at")
    def created(self, obj):
        return ui.when(obj.created_at)

    @admin.display(description="record")
    def record(self, obj):
        return ui.two_lines(
            ui.link("syncing", "record", obj.record_id, ui.truncate(obj.external_id, 28)),
            obj.entity_type,
        )

    @admin.display(description="fields changed on both sides")
    def changed_fields(self, obj):
        return ui.truncate(", ".join(obj.fields), 36)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        if obj.resolution:
            return ui.two_lines(ui.badge(obj.status), f"{obj.resolution} by {obj.resolved_by}")
        return ui.badge(obj.status)

    def empty_state(self):
        return format_html(
            "No conflicts. A conflict opens when a record changed both here and at the "
            'provider and its <a href="{}">sync task</a>\'s conflict strategy is manual.',
            reverse("admin:syncing_synctask_changelist"),
        )

    # -- the side-by-side page -----------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        conflict = get_object_or_404(Conflict.objects.select_related("task"), pk=object_id)
        if not self.has_view_or_change_permission(request, conflict):
            raise PermissionDenied
        rows = field_rows(conflict)
        for row in rows:
            row.chosen = (
                request.POST.get(f"field-{row.index}") if request.method == "POST" else row.default
            )
        errors: list[str] = []
        if request.method == "POST":
            if not self.has_change_permission(request, conflict):
                raise PermissionDenied
            response = self._resolve_from_form(request, conflict, rows, errors)
            if response is not None:
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": f"Conflict: {conflict.entity_type} {conflict.external_id}",
            "opts": self.model._meta,
            "original": conflict,
            "conflict": conflict,
            "rows": rows,
            "errors": errors,
            "record_url": ui.admin_url("syncing", "record", conflict.record_id),
            "resolved_json": ui.pretty_json(conflict.resolved_data)
            if conflict.resolved_data is not None
            else None,
            "can_change": self.has_change_permission(request, conflict),
        }
        return TemplateResponse(request, "admin/syncing/conflict/resolve.html", context)

    def _resolve_from_form(self, request, conflict, rows, errors):
        everything = request.POST.get("all")
        choices: dict[str, str] = {}
        if everything in SIDES:
            resolution = everything
            data = None
        else:
            for row in rows:
                if not row.differs:
                    continue
                choice = request.POST.get(f"field-{row.index}")
                if choice not in SIDES:
                    errors.append(f"Choose the local or the remote value of {row.name!r}.")
                choices[row.name] = choice
            if errors:
                return None
            data = merge(rows, choices)
            picked = set(choices.values())
            # One side throughout is that side's resolution: "remote" also drops a local push
            # held for this conflict, "local" releases it; anything else is a merge.
            resolution = picked.pop() if len(picked) == 1 else Conflict.Resolution.MERGED
            if resolution != Conflict.Resolution.MERGED:
                data = None
        try:
            services.conflict_resolve(
                conflict=conflict, resolution=resolution, data=data, by=f"admin:{request.user}"
            )
        except services.ConflictError as exc:
            errors.append(str(exc))
            return None
        self.message_user(
            request,
            f"Conflict on {conflict.external_id} resolved ({resolution}).",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:syncing_conflict_change", args=[conflict.pk]))

    # -- bulk actions ----------------------------------------------------------------------------

    def _resolve(self, request, queryset, resolution):
        done = 0
        for conflict in queryset.filter(status=Conflict.Status.OPEN):
            try:
                services.conflict_resolve(
                    conflict=conflict, resolution=resolution, by=f"admin:{request.user}"
                )
                done += 1
            except services.ConflictError as exc:
                self.message_user(request, f"{conflict}: {exc}", messages.ERROR)
        self.message_user(
            request, f"{ui.count(done, 'conflict')} resolved ({resolution}).", messages.SUCCESS
        )

    @admin.action(
        description="Resolve the selected conflicts: take the provider's version",
        permissions=["change"],
    )
    def take_remote(self, request, queryset):
        self._resolve(request, queryset, Conflict.Resolution.REMOTE)

    @admin.action(
        description="Resolve the selected conflicts: keep Castiel's version (pushed)",
        permissions=["change"],
    )
    def keep_local(self, request, queryset):
        self._resolve(request, queryset, Conflict.Resolution.LOCAL)
