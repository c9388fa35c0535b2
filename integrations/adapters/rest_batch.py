"""The generic REST adapter's bulk endpoint: many writes of one operation in one request.

Configured with ``batch_path`` (``{operation}`` becomes ``create``, ``update`` or
``archive``), ``batch_max_size`` and ``batch_operations``. The shape is Castiel's own (the
sandbox serves it): the request ``{"inputs": [{"key", "id", "data"}]}`` — ``key`` the change's
idempotency key, which the provider keeps per item —, the answer (200, or 207 when some items
failed) ``{"results": [{"key", "status", "record" | "error", "replayed"}]}``, one per input.
"""

from __future__ import annotations

from castiel.http.errors import RETRYABLE_STATUSES
from integrations.adapters.base import (
    BatchItem,
    ItemFailed,
    ItemOutcome,
    MalformedPage,
    PushResult,
)

OPERATION_NAMES = {"create": "create", "update": "update", "delete": "archive"}


def push_many(adapter, operation: str, items: list[BatchItem]) -> dict[str, ItemOutcome]:
    options = adapter.options
    inputs = []
    for item in items:
        entry: dict = {"key": item.key}
        if item.external_id is not None:
            entry["id"] = item.external_id
        if item.payload is not None:
            entry["data"] = adapter._writable(item.payload)
        inputs.append(entry)
    path = options["batch_path"].replace("{operation}", OPERATION_NAMES[operation])
    response = adapter._send_write("POST", path, operation=operation, body={"inputs": inputs})
    body = adapter._json(response)
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise MalformedPage("the batch answer has no results list")
    outcomes = {}
    for answer in results:
        if not isinstance(answer, dict) or "key" not in answer:
            continue
        outcomes[str(answer["key"])] = _outcome(adapter, operation, answer, items)
    return outcomes


def _outcome(adapter, operation: str, answer: dict, items) -> ItemOutcome:
    status = answer.get("status")
    if not isinstance(status, int):
        return ItemOutcome(error=ItemFailed("the item's answer has no status", retryable=True))
    if status >= 300:
        error = answer.get("error")
        message = error if isinstance(error, str) else str(error or f"HTTP {status}")
        return ItemOutcome(
            error=ItemFailed(
                f"batch {operation} item: {message}"[:1000],
                status=status,
                retryable=status in RETRYABLE_STATUSES or status >= 500,
            )
        )
    record = answer.get("record")
    if not isinstance(record, dict) or not record:
        record = None
    if operation == "delete":
        record = None
    external_id = (adapter.external_id(record) if record else None) or answer.get("id")
    if external_id is None:
        external_id = next((i.external_id for i in items if i.key == answer["key"]), None)
    if not external_id:
        return ItemOutcome(error=ItemFailed("the item's answer names no record id", retryable=True))
    version = adapter.remote_version(record) if record else None
    if version is None and isinstance(answer.get("version"), str):
        version = answer["version"]
    return ItemOutcome(
        result=PushResult(
            external_id=str(external_id),
            record=record,
            version=version,
            replayed=bool(answer.get("replayed")),
            status=status,
        )
    )


def options_errors(options: dict) -> dict[str, str]:
    errors = {}
    path = options.get("batch_path")
    if not isinstance(path, str):
        errors["batch_path"] = "batch_path must be a string."
    elif path and "{operation}" not in path:
        errors["batch_path"] = "batch_path must contain {operation}."
    size = options.get("batch_max_size")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1000:
        errors["batch_max_size"] = "batch_max_size must be a whole number from 1 to 1000."
    ops = options.get("batch_operations")
    if not isinstance(ops, list) or not set(ops) <= set(OPERATION_NAMES):
        errors["batch_operations"] = "batch_operations must list create, update and/or delete."
    return errors
