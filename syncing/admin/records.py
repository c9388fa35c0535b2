"""Records (edited through the outbox), their change history, and the dedup-key index."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from castiel import admin_helpers as ui
from syncing.admin import store_records
from syncing.models import (
    ChangeFeedPruned,
    Conflict,
    DeadLetter,
    OutboundChange,
    Record,
    RecordChange,
    RecordKey,
)
from syncing.outbound import batch_changes, local_changes
from syncing.records import history
from syncing.records.stores import RecordStoreUnavailable, external_store, get_store
from syncing.records.stores import search as record_search
from syncing.records.stores.orm import to_row

# RecordChange.source → (app, model) of the admin page that names the source.
SOURCE_PAGES = {
    "run": ("syncing", "syncrun"),
    "webhook": ("webhooks", "webhookevent"),
    "conflict": ("syncing", "conflict"),
    "api": ("syncing", "outboundchange"),
    "admin": ("syncing", "outboundchange"),
    "rule": ("syncing", "outboundchange"),
    "service": ("syncing", "outboundchange"),
    "push": ("syncing", "outboundchange"),
}


def source_link(change: RecordChange):
    label = change.get_source_display()
    if not change.source_id:
        return label
    app, model = SOURCE_PAGES[change.source]
    return ui.link(app, model, change.source_id, f"{label} {change.source_id[:8]}")


class PrettyJSONField(forms.JSONField):
    """The record's data indented, one field per line: easier to read and to edit."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, cls=self.encoder)


class RecordForm(forms.ModelForm):
    data = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "class": "vLargeTextField"})
    )

    class Meta:
        model = Record
        fields = ["integration", "entity_type", "data"]

    def clean_data(self):
        data = self.cleaned_data["data"]
        if not isinstance(data, dict):
            raise forms.ValidationError("The data must be a JSON object.")
        if self.instance.pk and self.instance.deleted_at is not None:
            raise forms.ValidationError("The record is deleted; it cannot be edited.")
        return data


class LocallyModifiedFilter(admin.SimpleListFilter):
    title = "local edits"
    parameter_name = "modified"

    def lookups(self, request, model_admin):
        return [("yes", "Edited locally since the last sync"), ("no", "As last synced")]

    def queryset(self, request, queryset):
        edited = ~Q(content_hash=F("base_hash")) & ~Q(base_hash="")
        if self.value() == "yes":
            return queryset.filter(edited)
        if self.value() == "no":
            return queryset.exclude(edited)
        return queryset


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    """Records are edited through the outbox services: every save (and delete) here is a local
    change with its outbound change in the same transaction, pushed to the provider next."""

    form = RecordForm
    # What the record is (its display fields: name and email of a contact, title of an
    # issue), where it comes from, and its state; ids, versions and hashes are on its page.
    list_display = ("title", "details", "source", "state", "synced")
    list_display_links = ("title",)
    list_filter = (
        "entity_type",
        LocallyModifiedFilter,
        ("deleted_at", admin.EmptyFieldListFilter),
        "tenant",
        "integration",
    )
    # The id and external id (indexed), and every word in the display fields
    # (get_search_fields: the catalogue's and the integrations' configured ones).
    search_fields = ("=id", "=external_id")
    search_help_text = (
        "Name, email or title (the display fields of each entity type), an external id or "
        "a record id."
    )
    list_select_related = ("integration", "tenant")
    show_full_result_count = False
    actions = ["delete_locally"]
    readonly_extra = ("edited", "history_table", "related")

    # -- records in another store (Cosmos DB): see syncing/admin/store_records.py ----------

    def changelist_view(self, request, extra_context=None):
        store = external_store()
        if store is None:
            return super().changelist_view(request, extra_context)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            return store_records.changelist(self, request, store)
        except RecordStoreUnavailable as exc:
            return store_records.unavailable(self, request, store, exc)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RecordStoreUnavailable as exc:
            return store_records.unavailable(self, request, get_store(), exc)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except RecordStoreUnavailable as exc:
            return store_records.unavailable(self, request, get_store(), exc)

    def get_object(self, request, object_id, from_field=None):
        store = external_store()
        if store is None:
            return super().get_object(request, object_id, from_field)
        return store_records.row_for(store, object_id)

    @admin.display(boolean=True, description="edited locally")
    def edited(self, obj):
        return bool(obj.base_hash) and obj.content_hash != obj.base_hash

    def get_search_fields(self, request):
        paths = record_search.search_paths()
        return (*self.search_fields, *(f"data__{p.replace('.', '__')}" for p in paths))

    def _display(self, obj) -> dict:
        if not hasattr(obj, "_castiel_display"):
            obj._castiel_display = record_search.display(obj, obj.integration)
        return obj._castiel_display

    @admin.display(description="record", ordering="external_id")
    def title(self, obj):
        shown = ui.truncate(self._display(obj)["title"], 36)
        return ui.two_lines(shown, ui.truncate(f"{obj.entity_type} · {obj.external_id}", 36))

    @admin.display(description="details")
    def details(self, obj):
        values = list(self._display(obj)["fields"].values())[1:]
        return ui.truncate(" · ".join(values), 40) if values else "—"

    def empty_state(self):
        return format_html(
            'No records yet. Records arrive when a <a href="{}">sync task</a> runs (or a '
            "webhook delivers one); a task's first run pulls everything.",
            reverse("admin:syncing_synctask_changelist"),
        )

    @admin.display(description="integration", ordering="integration__name")
    def source(self, obj):
        return ui.two_lines(ui.truncate(obj.integration.name, 28), obj.tenant.name)

    @admin.display(description="state")
    def state(self, obj):
        if obj.deleted_at is not None:
            return ui.badge("deleted")
        if self.edited(obj):
            return ui.badge("pending", "edited locally")
        return ui.badge("ok", "as synced")

    @admin.display(description="synced", ordering="synced_at")
    def synced(self, obj):
        return ui.when(obj.synced_at)

    def render_change_form(self, request, context, add=False, change=False, **kwargs):
        obj = context.get("original")
        if obj is not None and obj.pk and not add:
            shown = self._display(obj)["title"]
            context["title"] = f"{shown} ({obj.entity_type}, {obj.integration.name})"
        return super().render_change_form(request, context, add, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["integration", "entity_type", "data"]
        return ["data", "history_table", "related", *self._own_fields()]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*self.readonly_extra, *self._own_fields()]

    @staticmethod
    def _own_fields() -> list[str]:
        """The record's columns after its data; the base is shown by :meth:`base`."""
        return [
            "base" if f.name == "base_data" else f.name
            for f in Record._meta.fields
            if f.name != "data"
        ]

    @admin.display(description="Base data")
    def base(self, obj):
        """The remote version as of the last sync (stored only when it differs from the data)."""
        base = obj.data if obj.base_data is None else obj.base_data
        return format_html("<pre>{}</pre>", json.dumps(base, indent=2, ensure_ascii=False))

    @admin.display(description="History")
    def history_table(self, obj):
        changes = history.for_record(obj.pk)
        if not changes:
            return "No recorded changes."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.at:%Y-%m-%d %H:%M:%S}",
                    ui.badge(change.action),
                    ", ".join(change.fields)
                    or ("all fields" if change.action == "created" else "—"),
                    source_link(change),
                    change.actor or "",
                )
                for change in changes
            ),
        )
        return format_html(
            '<table class="castiel-table" id="record-history"><thead><tr><th>when</th>'
            "<th>change</th><th>fields</th><th>by</th><th>actor</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Related")
    def related(self, obj):
        pk = str(obj.pk)
        parts = [
            ui.changelist_link(
                "syncing",
                "outboundchange",
                f"{OutboundChange.objects.filter(record_id=obj.pk).count()} outbound change(s)",
                record_id=pk,
            ),
            ui.changelist_link(
                "syncing",
                "conflict",
                f"{Conflict.objects.filter(record_id=obj.pk).count()} conflict(s)",
                record_id=pk,
            ),
            ui.changelist_link(
                "syncing",
                "deadletter",
                f"{DeadLetter.objects.filter(record_id=obj.pk).count()} dead letter(s)",
                record_id=pk,
            ),
        ]
        return format_html_join(" · ", "{}", ((part,) for part in parts))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a hard delete would never reach the provider
        return actions

    def save_model(self, request, obj, form, change):
        actor = f"admin:{request.user}"
        try:
            if change:
                result = local_changes.record_update(
                    tenant_id=obj.tenant_id,
                    record_id=obj.pk,
                    data=form.cleaned_data["data"],
                    replace=True,
                    origin=OutboundChange.Origin.ADMIN,
                    actor=actor,
                )
            else:
                result = local_changes.record_create(
                    integration=form.cleaned_data["integration"],
                    entity_type=form.cleaned_data["entity_type"],
                    data=form.cleaned_data["data"],
                    origin=OutboundChange.Origin.ADMIN,
                    actor=actor,
                )
        except local_changes.RecordChangeError as exc:
            # A race the form could not see (the record changed meanwhile): nothing was saved.
            self.message_user(request, f"Not saved: {exc}", messages.ERROR)
            return
        if external_store() is None:
            saved = Record.objects.get(pk=result.record.id)
        else:
            saved = to_row(result.record)  # as the store just wrote it
        obj.__dict__.update(saved.__dict__)  # the admin's redirect and log use obj.pk

    def delete_model(self, request, obj):
        local_changes.record_delete(
            tenant_id=obj.tenant_id,
            record_id=obj.pk,
            origin=OutboundChange.Origin.ADMIN,
            actor=f"admin:{request.user}",
        )

    @admin.action(
        description="Delete the selected records here and at the provider", permissions=["delete"]
    )
    def delete_locally(self, request, queryset):
        """One batch write per tenant and 1,000 records (``batch_changes``), not a
        transaction per record."""
        live = queryset.filter(deleted_at__isnull=True).order_by("tenant_id", "id")
        by_tenant: dict = {}
        for tenant_id, record_id in live.values_list("tenant_id", "id"):
            by_tenant.setdefault(tenant_id, []).append(record_id)
        done = failed = 0
        for tenant_id, ids in by_tenant.items():
            for start in range(0, len(ids), batch_changes.MAX_ITEMS):
                result = batch_changes.records_write_batch(
                    tenant_id=tenant_id,
                    items=[
                        batch_changes.BatchItem("delete", record_id=record_id)
                        for record_id in ids[start : start + batch_changes.MAX_ITEMS]
                    ],
                    origin=OutboundChange.Origin.ADMIN,
                    actor=f"admin:{request.user}",
                )
                failed += result.failed
                done += len(result.results) - result.failed
        self.message_user(
            request,
            f"{ui.count(done, 'record')} deleted here; the deletes are queued for the provider.",
        )
        if failed:  # deleted or removed meanwhile
            self.message_user(
                request, f"{ui.count(failed, 'record')} could not be deleted.", messages.WARNING
            )


@admin.register(RecordChange)
class RecordChangeAdmin(admin.ModelAdmin):
    """The history of every record: read-only (written by the code that changes records)."""

    list_display = ("when", "action_badge", "record", "changed", "source_page")
    list_display_links = ("when",)
    list_filter = ("action", "source", "entity_type", "tenant")
    search_fields = ("=record_id", "=external_id", "=source_id", "=correlation_id")
    show_full_result_count = False
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in RecordChange._meta.fields] + ["record", "source_page"]

    @admin.display(description="at", ordering="at")
    def when(self, obj):
        return ui.when(obj.at)

    @admin.display(description="change", ordering="action")
    def action_badge(self, obj):
        return ui.badge(obj.action)

    @admin.display(description="record")
    def record(self, obj):
        label = ui.truncate(obj.external_id or obj.record_id, 24)
        return ui.two_lines(ui.link("syncing", "record", obj.record_id, label), obj.entity_type)

    @admin.display(description="fields")
    def changed(self, obj):
        return ui.truncate(", ".join(obj.fields), 36)

    @admin.display(description="source")
    def source_page(self, obj):
        return ui.two_lines(source_link(obj), ui.truncate(obj.actor, 24) if obj.actor else None)


@admin.register(RecordKey)
class RecordKeyAdmin(admin.ModelAdmin):
    """The ORM store's dedup-key index (maintained by the store; read-only)."""

    list_display = ("key", "entity_type", "record")
    list_filter = ("entity_type",)
    search_fields = ("=key", "=record__id", "=record__external_id")
    list_select_related = ("record",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChangeFeedPruned)
class ChangeFeedPrunedAdmin(admin.ModelAdmin):
    """How far retention has pruned the change feed (one row, written by the prune job): a
    feed cursor below it is answered 410 and its reader resynchronises. Read-only."""

    list_display = ("__str__", "txid", "change_id", "pruned_at")
    readonly_fields = ("txid", "change_id", "pruned_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
