"""The admin's record pages over a record store other than the ORM (Azure Cosmos DB).

With ``CASTIEL_RECORD_STORE=cosmos`` the ``Record`` table stays empty: the records live in
Cosmos DB. The record list then reads them through the store (``RecordStore.list_page``):
one tenant at a time (the tenant is Cosmos DB's partition key), optionally one integration
and entity type, in id order, a page at a time behind a signed continuation token; a record
page reads its record with ``RecordStore.find``. Edits and deletes already go through the
store (``syncing.outbound.local_changes``), and history, outbound changes and conflicts live in the
relational database whatever the store, so the rest of the record page is the ORM one.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils.http import urlencode

from castiel.tenancy.models import Tenant
from integrations.models import Integration
from syncing.records.stores import cursors
from syncing.records.stores import search as record_search
from syncing.records.stores.orm import to_row

PAGE_SIZE = 50
TEMPLATE = "admin/syncing/record/store_list.html"
UNAVAILABLE_TEMPLATE = "admin/syncing/record/store_unavailable.html"
SEARCH_UNSUPPORTED = (
    "Search is not supported with the {store} record store: filter by tenant, integration "
    "and entity type instead (the API refuses ?q= too)."
)


def unavailable(model_admin, request, store, exc) -> TemplateResponse:
    """A page saying the record store cannot be reached (503), instead of a server error."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Record store unavailable",
        "store_name": store.describe(),
        "reason": exc.reason,
    }
    return TemplateResponse(request, UNAVAILABLE_TEMPLATE, context, status=503)


def row_for(store, object_id):
    """The record as an (unsaved) ``Record`` for the admin's record page, or None."""
    try:
        record_id = uuid.UUID(str(object_id))
    except ValueError:
        return None
    found = store.find(record_id)
    return to_row(found) if found is not None else None


def _uuid(value):
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def changelist(model_admin, request, store) -> TemplateResponse:
    params = request.GET
    if params.get("q"):
        messages.warning(request, SEARCH_UNSUPPORTED.format(store=store.name))
    tenants = list(Tenant.objects.order_by("name"))
    wanted = _uuid(params.get("tenant"))
    tenant = next((t for t in tenants if t.pk == wanted), tenants[0] if tenants else None)
    integrations = list(Integration.objects.filter(tenant=tenant).order_by("name"))
    integration_id = _uuid(params.get("integration"))
    if integration_id not in {i.pk for i in integrations}:
        integration_id = None
    entity_type = (params.get("entity_type") or "").strip()[:100] or None
    include_deleted = params.get("deleted") == "1"
    records, next_url = [], None
    if tenant is not None:
        continuation = None
        if params.get("cursor"):
            try:
                continuation = cursors.unwrap(params["cursor"], tenant.pk)
            except cursors.BadCursor:
                messages.error(request, "That page link is not valid here; showing the first page.")
        found, continuation = store.list_page(
            tenant.pk,
            integration_id=integration_id,
            entity_type=entity_type,
            include_deleted=include_deleted,
            page_size=PAGE_SIZE,
            continuation=continuation,
        )
        by_id = {i.pk: i for i in integrations}
        records = []
        for stored in found:
            row, integration = to_row(stored), by_id.get(stored.integration_id)
            shown = record_search.display(row, integration)
            details = " · ".join(list(shown["fields"].values())[1:])
            name = integration.name if integration else stored.integration_id
            records.append((row, name, shown["title"], details))
        if continuation:
            query = {k: v for k, v in params.items() if k != "cursor"}
            query["cursor"] = cursors.wrap(continuation, tenant.pk)
            next_url = f"?{urlencode(query)}"
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Records",
        "store_name": getattr(store, "name", type(store).__name__),
        "tenants": tenants,
        "tenant": tenant,
        "integrations": integrations,
        "integration_id": integration_id,
        "entity_type": entity_type or "",
        "include_deleted": include_deleted,
        "records": records,
        "next_url": next_url,
        "first_page": not params.get("cursor"),
        "has_add_permission": model_admin.has_add_permission(request),
    }
    return TemplateResponse(request, TEMPLATE, context)
