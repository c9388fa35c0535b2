"""Records API reads from a record store other than the ORM (Azure Cosmos DB).

With ``CASTIEL_RECORD_STORE=cosmos`` the records live in Cosmos DB, so the records endpoints
read them through the store (``RecordStore.get`` / ``list_page``) instead of the ``Record``
table, and writes already go through the store (``syncing.outbound.local_changes``). What Cosmos
DB pages well is what is offered: filters ``integration``, ``entity_type`` and
``deleted=false``, in id order, with cursor pagination (``next`` carries the store's
continuation token, signed). Other filters and ``ordering`` are refused with a 400 naming them,
rather than silently ignored.
The response envelope is the usual one (``count`` is null: Cosmos DB does not count cheaply).
"""

from __future__ import annotations

import uuid

from django.http import Http404
from rest_framework.exceptions import ValidationError
from rest_framework.fields import DateTimeField
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from syncing.records.stores import cursors
from syncing.records.stores.orm import to_row

SUPPORTED = {"integration", "entity_type", "deleted", "cursor", "page_size"}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def get_or_404(store, tenant, pk):
    try:
        record_id = uuid.UUID(str(pk))
    except ValueError:
        raise Http404 from None
    stored = store.get(tenant.id, record_id)
    if stored is None:
        raise Http404
    return to_row(stored)  # an unsaved Record: what the serializer and the views expect


def list_response(view, store, request) -> Response:
    params = request.query_params
    if "q" in params:
        raise ValidationError({"q": "search is not supported with the Cosmos DB record store"})
    unsupported = sorted(set(params) - SUPPORTED)
    if unsupported:
        raise ValidationError(
            {
                name: "Not available with the Cosmos DB record store: filter by integration, "
                "entity_type and deleted=false; records come in id order."
                for name in unsupported
            }
        )
    deleted = params.get("deleted")
    if deleted not in (None, "false"):
        raise ValidationError(
            {"deleted": "With the Cosmos DB record store only deleted=false is available."}
        )
    integration_id = None
    if params.get("integration"):
        try:
            integration_id = uuid.UUID(params["integration"])
        except ValueError:
            raise ValidationError({"integration": "Must be a valid UUID."}) from None
    try:
        page_size = int(params.get("page_size") or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise ValidationError({"page_size": "Must be a whole number."}) from None
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": f"Must be between 1 and {MAX_PAGE_SIZE}."})

    tenant_id = view.get_tenant().id
    continuation = None
    if params.get("cursor"):
        try:
            continuation = cursors.unwrap(params["cursor"], tenant_id)
        except cursors.BadCursor:
            raise ValidationError({"cursor": "Not a cursor this endpoint returned."}) from None
    records, continuation = store.list_page(
        tenant_id,
        integration_id=integration_id,
        entity_type=params.get("entity_type") or None,
        include_deleted=deleted is None,
        page_size=page_size,
        continuation=continuation,
    )
    url = request.build_absolute_uri()
    serializer = view.get_serializer([to_row(r) for r in records], many=True)
    next_cursor = cursors.wrap(continuation, tenant_id) if continuation else None
    return Response(
        {
            "count": None,
            "next": replace_query_param(url, "cursor", next_cursor) if next_cursor else None,
            "previous": None,
            "results": serializer.data,
        }
    )


def current_records(tenant_id, changes) -> dict:
    """What each change's ``record`` shows: the record as it is now (the records endpoint's
    shape), or its tombstone when it is deleted or gone — {record id: dict}. One query for
    the ORM store; one per integration and entity type for a store outside the database."""
    from syncing.api.serializers import FeedRecordSerializer
    from syncing.models import Record
    from syncing.records.stores import external_store
    from syncing.records.stores.base import Scope

    wanted: dict = {}
    for change in changes:
        wanted.setdefault(change.record_id, change)
    store = external_store()
    found: dict = {}
    if store is None:
        found = {r.id: r for r in Record.objects.filter(tenant_id=tenant_id, id__in=list(wanted))}
    else:
        scopes: dict = {}
        for change in wanted.values():
            scope = Scope(tenant_id, change.integration_id, change.entity_type)
            scopes.setdefault(scope, []).append(change.record_id)
        for scope, ids in scopes.items():
            found.update({rid: to_row(r) for rid, r in store.get_many(scope, ids).items()})
    shown = {}
    for record_id, change in wanted.items():
        record = found.get(record_id)
        if record is not None and record.deleted_at is None:
            shown[record_id] = FeedRecordSerializer(record).data
        else:
            shown[record_id] = {
                "id": str(record_id),
                "integration": str(change.integration_id),
                "entity_type": change.entity_type,
                "external_id": record.external_id if record is not None else change.external_id,
                "deleted_at": api_time(record.deleted_at if record is not None else change.at),
            }
    return shown


_TIME = DateTimeField()


def api_time(moment) -> str:
    """A time as the API writes it (DRF's ISO 8601)."""
    return _TIME.to_representation(moment)
