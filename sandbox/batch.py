"""The sandbox's batch endpoint: ``POST /sandbox/<account>/<collection>/batch/<operation>/``.

``operation`` is ``create``, ``update`` or ``archive``; the body ``{"inputs": [...]}`` holds up
to :data:`MAX_INPUTS` items ``{"key", "id", "data"}`` (``key``: the item's idempotency key,
kept per item like a single write's ``Idempotency-Key``; ``id`` for update/archive; ``data``
for create/update). The whole request is one request for the account's rate limit and its
request-level faults (429, 5xx, timeout, lost …); each item succeeds or fails on its own: the
answer is 200 when every item succeeded, else 207, with one result per input, in order::

    {"results": [{"key": "k1", "status": 201, "id": 7, "record": {...}},
                 {"key": "k2", "status": 422, "error": "validation failed", "fields": {...}}]}

Item faults (``faults``): ``item_error_rate`` — a share of items answered 422 ``injected
item error`` (seeded by the item's key: the same item fails again when retried, like a real
validation error) —, ``item_retry_rate`` — a share answered 503 (seeded by key and request:
a retry may pass). An item whose key was used before replays its stored answer
(``"replayed": true``); a single write under that key replays it too (``views._idempotent``).
"""

from __future__ import annotations

import hashlib
import json
import random

from django.db import IntegrityError, transaction
from django.http import JsonResponse

from sandbox import services
from sandbox.models import SandboxAccount, SandboxIdempotencyKey, SandboxObject
from sandbox.views import _body, _error, sandbox_endpoint

MAX_INPUTS = 100
OPERATIONS = ("create", "update", "archive")
BATCH_METHOD = "BATCH"  # how an item's key is stored (SandboxIdempotencyKey.method)


@sandbox_endpoint
def batch(request, account, name: str, operation: str):
    if request.method != "POST":
        return _error(405, "method not allowed")
    if operation not in OPERATIONS:
        return _error(404, f"no batch operation {operation!r} (one of {', '.join(OPERATIONS)})")
    body = _body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return _error(400, "inputs must be a non-empty list")
    if len(inputs) > MAX_INPUTS:
        return _error(400, f"at most {MAX_INPUTS} inputs per request")
    faults = account.faults or {}
    # This request's number (the view's account row was read before it was counted).
    number = SandboxAccount.objects.values_list("request_count", flat=True).get(pk=account.pk)
    results = [
        _item(account, name, operation, entry, position, faults, number, request.path)
        for position, entry in enumerate(inputs)
    ]
    status = 200 if all(r["status"] < 300 for r in results) else 207
    return JsonResponse({"results": results}, status=status)


def _item(account, name, operation, entry, position, faults, number, path) -> dict:
    if not isinstance(entry, dict):
        return {"key": None, "status": 400, "error": f"input {position} is not an object"}
    key = str(entry.get("key") or "")[:255]
    if key:
        stored = SandboxIdempotencyKey.objects.filter(account=account, key=key).first()
        if stored is not None:
            return _replayed(stored, key)
    fault = _item_fault(faults, key or str(position), number)
    if fault == "503":
        return {"key": key, "status": 503, "error": "injected item error (retryable)"}
    body_hash = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
    try:
        with transaction.atomic():
            stored = None
            if key:
                stored = SandboxIdempotencyKey.objects.create(
                    account=account,
                    key=key,
                    method=BATCH_METHOD,
                    path=path[:500],
                    body_hash=body_hash,
                    status=0,
                )
            result = {"key": key, **_apply(account, name, operation, entry, fault)}
            if stored is not None:
                stored.status = result["status"]
                stored.response = json.dumps(result)
                stored.save(update_fields=["status", "response"])
            return result
    except IntegrityError:  # the same key, concurrently: its answer is committed now
        return _replayed(SandboxIdempotencyKey.objects.get(account=account, key=key), key)


def _replayed(stored: SandboxIdempotencyKey, key: str) -> dict:
    if stored.method == BATCH_METHOD:
        answer = json.loads(stored.response or "{}")
    else:  # first written by a single request
        record = json.loads(stored.response or "null")
        answer = {"key": key, "status": stored.status}
        if isinstance(record, dict) and stored.status < 300:
            answer.update(id=record.get("id"), record=record)
        else:
            answer["error"] = record
    return {**answer, "key": key, "replayed": True}


def _apply(account, name: str, operation: str, entry: dict, fault: str) -> dict:
    """Apply one item (inside its own savepoint); its answer without the key."""
    if fault == "422":
        return {"status": 422, "error": "injected item error"}
    data = entry.get("data")
    try:
        if operation == "create":
            services.validate(name, data)
            obj = services.object_create(account=account, collection=name, data=data)
            return {"status": 201, "id": obj.pk, "record": services.serialize(obj)}
        obj = SandboxObject.objects.filter(
            account=account, collection=name, pk=_pk(entry.get("id"))
        ).first()
        if obj is None or (operation == "update" and obj.deleted_at is not None):
            return {"status": 404, "error": "not found"}
        if operation == "update":
            services.validate(name, data)
            services.object_update(obj=obj, data=data)
            return {"status": 200, "id": obj.pk, "record": services.serialize(obj)}
        if obj.deleted_at is None:
            services.object_delete(obj=obj)
        return {"status": 200, "id": obj.pk}
    except services.BadRequest as exc:
        return {"status": 400, "error": str(exc)}
    except services.Invalid as exc:
        return {"status": 422, "error": "validation failed", "fields": exc.fields}


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _item_fault(faults: dict, key: str, number: int) -> str:
    seed = faults.get("seed", 0)
    permanent = float(faults.get("item_error_rate", 0) or 0)
    if permanent and random.Random(f"{seed}:item:{key}").random() < permanent:  # noqa: S311
        return "422"
    retry = float(faults.get("item_retry_rate", 0) or 0)
    if retry and random.Random(f"{seed}:{number}:{key}").random() < retry:  # noqa: S311
        return "503"
    return ""
