"""HubSpot CRM v3 batch writes: ``POST /crm/v3/objects/{type}/batch/{create|update|archive}``.

Up to :data:`MAX_INPUTS` (100) inputs per request. ``create`` takes ``{"inputs":
[{"properties"}]}`` and answers 201 with ``results`` (each the created object) — HubSpot does
not promise the inputs' order, so results are matched by the ``unique_id_property`` value
each create writes (the change's idempotency key): batch creates are offered only when that
property is configured. ``update`` takes ``[{"id", "properties"}]`` and answers 200 with the
updated objects (matched by id). Either answers **207 Multi-Status** when some inputs failed:
``results`` for the others and ``errors`` (``{"status": "error", "category", "message",
"context": {"ids": [...]}}``) naming the failed inputs' ids. ``archive`` takes ``[{"id"}]``
and answers 204 No Content. A batch HubSpot refuses as a whole (e.g. a create whose unique
value exists: 409 ``CONFLICT``, or a 400 ``VALIDATION_ERROR``) raises like a single write: the
push worker then pushes those changes one by one.
"""

from __future__ import annotations

from integrations.adapters.base import (
    BatchItem,
    ItemFailed,
    ItemOutcome,
    MalformedPage,
    PushResult,
)

MAX_INPUTS = 100
#: a multi-status error's category → the HTTP status it stands for (permanent unless noted)
CATEGORY_STATUS = {
    "VALIDATION_ERROR": 400,
    "OBJECT_NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMIT": 429,
}


def push_many(adapter, operation: str, items: list[BatchItem]) -> dict[str, ItemOutcome]:
    path = f"{adapter.objects_path}/batch/{'archive' if operation == 'delete' else operation}"
    if operation == "delete":
        inputs = [{"id": item.external_id} for item in items]
    elif operation == "create":
        unique = adapter.unique_id_property
        inputs = []
        for item in items:
            body = adapter.writable(item.payload or {})
            body["properties"][unique] = item.key
            inputs.append(body)
    else:
        inputs = [
            {"id": item.external_id, **adapter.writable(item.payload or {})} for item in items
        ]
    response = adapter.request(
        "POST", path, operation=operation, record=True, json={"inputs": inputs}
    )
    if operation == "delete":  # 204: every input archived (unknown ids included)
        return {
            item.key: ItemOutcome(
                result=PushResult(external_id=item.external_id, status=response.status_code)
            )
            for item in items
        }
    body = adapter.json(response)
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise MalformedPage("HubSpot batch answer without 'results'")
    if operation == "create":
        by_key = {
            str((result.get("properties") or {}).get(adapter.unique_id_property)): result
            for result in body["results"]
            if isinstance(result, dict)
        }
        found = {item.key: by_key.get(item.key) for item in items}
    else:
        by_id = {str(r.get("id")): r for r in body["results"] if isinstance(r, dict)}
        found = {item.key: by_id.get(str(item.external_id)) for item in items}
    failed = _errors_by_id(body.get("errors"))
    outcomes = {}
    for item in items:
        record = found[item.key]
        if record is not None:
            outcomes[item.key] = ItemOutcome(
                result=adapter._result_from(record, response.status_code)
            )
        elif item.external_id is not None and str(item.external_id) in failed:
            outcomes[item.key] = ItemOutcome(error=failed[str(item.external_id)])
        elif body.get("errors") and operation == "create":
            # A create's error cannot name its input (it has no id yet); the batch's errors
            # say why the missing ones failed.
            outcomes[item.key] = ItemOutcome(error=_first(body["errors"]))
        # else: no answer for the item: the worker retries it (a retryable failure)
    return outcomes


def _errors_by_id(errors) -> dict[str, ItemFailed]:
    found = {}
    for error in errors or []:
        if not isinstance(error, dict):
            continue
        for value in (error.get("context") or {}).get("ids") or []:
            found[str(value)] = _failure(error)
    return found


def _first(errors) -> ItemFailed:
    first = next((e for e in errors if isinstance(e, dict)), {})
    return _failure(first)


def _failure(error: dict) -> ItemFailed:
    category = str(error.get("category") or "")
    status = CATEGORY_STATUS.get(category)
    return ItemFailed(
        f"HubSpot batch item: {category or 'error'}: {error.get('message') or ''}"[:1000],
        status=status,
        retryable=status == 429 or status is None,
        code=f"hubspot_{category.lower()}" if category else "",
    )
