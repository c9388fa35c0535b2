"""``POST /api/v1/records/batch/``: many record writes in one request (docs/api.md, "Batch
writes").

The body is checked here, by hand and in one pass, rather than by a DRF serializer per item:
1,000 nested serializers cost more than the batch's whole database work, and a bad item must
be named by its index and field (``details.items``), which DRF's list errors do not do
usefully. The serializers below describe the same body for the OpenAPI schema; the checks
and the schema are kept in step by tests/api/test_record_batch.py.

Nothing is written unless the whole body is valid (400). Then the service
(:mod:`syncing.outbound.batch_changes`) answers per item; an atomic batch that failed answers
409 ``batch_not_applied`` with each failing item.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from castiel.api.errors import ApiError
from castiel.api.schema import error_example, error_response
from integrations.models import Integration
from syncing.api.store_reads import api_time
from syncing.outbound.batch_changes import MAX_ITEMS, BatchItem, BatchResult

OPS = ("create", "update", "delete")
ALLOWED = {
    "create": {"op", "integration", "entity_type", "data"},
    "update": {"op", "id", "data", "replace", "expected_version"},
    "delete": {"op", "id", "expected_version"},
}
ENTITY_TYPE_MAX = 100


# -- the schema ---------------------------------------------------------------------------------


class RecordBatchItemSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=OPS, help_text="What to do with the record.")
    id = serializers.UUIDField(required=False, help_text="update, delete: the record.")
    integration = serializers.UUIDField(
        required=False, help_text="create: the integration the record belongs to."
    )
    entity_type = serializers.CharField(
        required=False, max_length=ENTITY_TYPE_MAX, help_text="create: the entity type."
    )
    data = serializers.DictField(
        required=False,
        help_text="create: the record's fields. update: the fields to change (merged), or "
        "its complete data with `replace`.",
    )
    replace = serializers.BooleanField(
        required=False, default=False, help_text="update: `data` replaces the record's data."
    )
    expected_version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="update, delete: refuse this item (409 version_mismatch) unless the record "
        "is still at this version.",
    )


class RecordBatchSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=RecordBatchItemSerializer(),
        min_length=1,
        max_length=MAX_ITEMS,
        help_text=f"1 to {MAX_ITEMS} changes; each record at most once.",
    )
    atomic = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: all or nothing (any failing item: nothing is written, 409). "
        "false: each item succeeds or fails on its own.",
    )


class RecordBatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="As a single write's: not_found, record_deleted, version_mismatch, "
        "invalid, duplicate_record; not_applied for the other items of a failed atomic batch."
    )
    message = serializers.CharField()


class RecordBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in `items` (from 0).")
    op = serializers.CharField()
    ok = serializers.BooleanField()
    status = serializers.IntegerField(
        help_text="The status a single write would have answered: 201, 200, 404, 409 … "
        "(424: not applied, another item of the atomic batch failed)."
    )
    id = serializers.UUIDField(allow_null=True, help_text="The record (null: not found).")
    version = serializers.IntegerField(allow_null=True, help_text="Its version after the item.")
    external_id = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Its local_updated_at.")
    outbound_change = serializers.UUIDField(
        allow_null=True, help_text="The outbound change that pushes it (null: nothing to push)."
    )
    error = RecordBatchErrorSerializer(allow_null=True)


class RecordBatchResponseSerializer(serializers.Serializer):
    atomic = serializers.BooleanField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = RecordBatchItemResultSerializer(many=True)


SCHEMA = extend_schema(
    summary="Create, update and delete many records (each change pushed to the provider)",
    description=f"Up to {MAX_ITEMS} items, each `create`, `update` or `delete`, each record at "
    "most once. A body that is not valid (400) writes nothing; `details.items` names each bad "
    "item by `index` and `field`. Otherwise each item gets a result with the status and error "
    "code a single write would have answered. `atomic: true`: all or nothing — if any item "
    "fails, nothing is written and the answer is 409 `batch_not_applied` with the failing "
    "items in `details.items`. `atomic: false` (default): the items that pass are written and "
    "the others are reported failed; check `failed` and each `ok`. A 200 means every item "
    "reported `ok` is committed, with its outbound change.",
    request=RecordBatchSerializer,
    responses={
        200: RecordBatchResponseSerializer,
        400: error_response(
            "The body is not a valid batch: nothing was written. `details.items` lists each "
            "bad item (`index`, `field`, `message`); other fields are named as usual.",
            error_example(
                "invalid",
                "Invalid input.",
                {"items": [{"index": 3, "field": "id", "message": "Must be a valid UUID."}]},
                status=400,
            ),
        ),
        409: error_response(
            "An atomic batch had failing items: nothing was written (`details.items`). Also: "
            "`atomic_unsupported` with a record store outside the database (Cosmos DB).",
            error_example(
                "batch_not_applied",
                "1 of 2 items failed; nothing was written (atomic batch).",
                {
                    "items": [
                        {
                            "index": 1,
                            "status": 409,
                            "code": "version_mismatch",
                            "message": "the record is at version 3, not 2",
                        }
                    ]
                },
                status=409,
            ),
        ),
    },
    examples=[
        OpenApiExample(
            "mixed batch",
            request_only=True,
            value={
                "atomic": False,
                "items": [
                    {
                        "op": "create",
                        "integration": "7d5e3f0c-2a41-4c8e-9d57-2f8d1c6b9a10",
                        "entity_type": "contacts",
                        "data": {"name": "Ada"},
                    },
                    {
                        "op": "update",
                        "id": "0b9f6a52-8d1e-4f7a-a3c2-5e6d7f8a9b01",
                        "data": {"phone": "+44 20 7946 0000"},
                        "expected_version": 3,
                    },
                    {"op": "delete", "id": "5c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"},
                ],
            },
        )
    ],
)


# -- the checks ---------------------------------------------------------------------------------


class _Errors:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, index: int, field: str | None, message: str) -> None:
        self.items.append({"index": index, "field": field, "message": message})


def parse(body, tenant) -> tuple[list[BatchItem], bool]:
    """The batch's items and its mode, or ApiError 400 naming every bad item and field."""
    if not isinstance(body, dict):
        raise ApiError(
            "Invalid input.", code="invalid", details={"non_field_errors": ["Expected an object."]}
        )
    top: dict[str, list[str]] = {}
    for key in body:
        if key not in ("items", "atomic"):
            top[key] = ["Unknown field."]
    atomic = body.get("atomic", False)
    if not isinstance(atomic, bool):
        top["atomic"] = ["Must be true or false."]
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_ITEMS:
        top["items"] = [f"A list of 1 to {MAX_ITEMS} items."]
    if top:
        raise ApiError("Invalid input.", code="invalid", details=top)

    errors = _Errors()
    integrations = _integrations(raw_items, tenant)
    items: list[BatchItem] = []
    first_index: dict[uuid.UUID, int] = {}
    for index, raw in enumerate(raw_items):
        item = _item(index, raw, integrations, errors)
        if item is None:
            continue
        if item.record_id is not None:
            earlier = first_index.setdefault(item.record_id, index)
            if earlier != index:
                errors.add(index, "id", f"Already changed by item {earlier}: one item per record.")
        items.append(item)
    if errors.items:
        raise ApiError("Invalid input.", code="invalid", details={"items": errors.items})
    return items, atomic


def _item(index: int, raw, integrations: dict, errors: _Errors) -> BatchItem | None:
    if not isinstance(raw, dict):
        errors.add(index, None, "Must be an object.")
        return None
    op = raw.get("op")
    if op not in OPS:
        errors.add(index, "op", 'Must be "create", "update" or "delete".')
        return None
    before = len(errors.items)
    for key in raw:
        if key not in ALLOWED[op]:
            errors.add(index, key, f"Not a field of a {op} item.")
    data = raw.get("data")
    if op in ("create", "update") and not isinstance(data, dict):
        errors.add(index, "data", "Must be a JSON object.")
    fields: dict = {"op": op, "data": data if isinstance(data, dict) else None}
    if op == "create":
        integration = integrations.get(_uuid(raw.get("integration")))
        if integration is None:
            errors.add(index, "integration", "Not an integration of this tenant.")
        entity_type = raw.get("entity_type")
        if not isinstance(entity_type, str) or not 1 <= len(entity_type) <= ENTITY_TYPE_MAX:
            errors.add(index, "entity_type", f"A string of 1 to {ENTITY_TYPE_MAX} characters.")
        fields.update(integration=integration, entity_type=entity_type)
    else:
        record_id = _uuid(raw.get("id"))
        if record_id is None:
            errors.add(index, "id", "Must be a valid UUID.")
        expected = raw.get("expected_version")
        if expected is not None and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 1
        ):
            errors.add(index, "expected_version", "Must be a whole number of at least 1.")
        replace = raw.get("replace", False)
        if not isinstance(replace, bool):
            errors.add(index, "replace", "Must be true or false.")
        fields.update(record_id=record_id, expected_version=expected, replace=replace is True)
    if len(errors.items) != before:
        return None
    return BatchItem(**fields)


def _uuid(value) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _integrations(raw_items: list, tenant) -> dict:
    """The tenant's integrations the creates name (one query; another tenant's is unknown)."""
    wanted = {
        _uuid(raw.get("integration"))
        for raw in raw_items
        if isinstance(raw, dict) and raw.get("op") == "create"
    }
    wanted.discard(None)
    if not wanted:
        return {}
    return {i.pk: i for i in Integration.objects.filter(tenant=tenant, pk__in=wanted)}


# -- the answer ---------------------------------------------------------------------------------


def not_applied(result: BatchResult) -> ApiError:
    failing = [r for r in result.results if r.error is not None and r.error.code != "not_applied"]
    return ApiError(
        f"{len(failing)} of {len(result.results)} items failed; nothing was written "
        "(atomic batch).",
        code="batch_not_applied",
        status=409,
        details={
            "items": [
                {
                    "index": r.index,
                    "status": r.status,
                    "code": r.error.code,
                    "message": str(r.error),
                }
                for r in failing
            ]
        },
    )


def body(result: BatchResult) -> dict:
    return {
        "atomic": result.atomic,
        "succeeded": len(result.results) - result.failed,
        "failed": result.failed,
        "results": [_result(r) for r in result.results],
    }


def _result(r) -> dict:
    record = r.record
    return {
        "index": r.index,
        "op": r.op,
        "ok": r.ok,
        "status": r.status,
        "id": str(record.id) if record is not None else None,
        "version": record.version if record is not None else None,
        "external_id": record.external_id if record is not None else None,
        "updated_at": _time(record.local_updated_at) if record is not None else None,
        "outbound_change": str(r.change.pk) if r.change is not None else None,
        "error": {"code": r.error.code, "message": str(r.error)} if r.error else None,
    }


def _time(moment) -> str | None:
    return api_time(moment) if moment is not None else None
