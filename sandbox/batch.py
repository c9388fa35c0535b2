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

from django.db import IntegrityError, connection, transaction
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
    results = _together(account, name, operation, inputs, faults, number, request.path)
    if results is None:  # one by one, each item in its own savepoint (see _together)
        results = [
            _item(account, name, operation, entry, position, faults, number, request.path)
            for position, entry in enumerate(inputs)
        ]
    status = 200 if all(r["status"] < 300 for r in results) else 207
    return JsonResponse({"results": results}, status=status)


def _item(account, name, operation, entry, position, faults, number, path) -> dict:
    if not isinstance(entry, dict):
        return _not_an_object(position)
    key = str(entry.get("key") or "")[:255]
    if key:
        stored = SandboxIdempotencyKey.objects.filter(account=account, key=key).first()
        if stored is not None:
            return _replayed(stored, key)
    fault = _item_fault(faults, key or str(position), number)
    if fault == "503":
        return _retry_later(key)
    body_hash = _body_hash(entry)
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


def _together(account, name, operation, inputs, faults, number, path) -> list[dict] | None:
    """The request's items in a few statements: the stored keys in one read, the creates in
    one INSERT, the new keys in another, all in one transaction. The same answers as one item
    at a time (:func:`_item`), which a hundred creates at five round trips each made the
    slowest part of ``bench outbound_batch``. None — go one by one — when two items share a
    key (the second replays the first), when the database cannot return the created ids,
    or when a concurrent request stored one of the keys first (the one-by-one path replays
    its answer)."""
    keys = [str(e.get("key") or "")[:255] if isinstance(e, dict) else "" for e in inputs]
    named = [key for key in keys if key]
    if len(set(named)) != len(named) or not connection.features.can_return_rows_from_bulk_insert:
        return None
    stored = {
        row.key: row for row in SandboxIdempotencyKey.objects.filter(account=account, key__in=named)
    }
    results: list[dict | None] = [None] * len(inputs)
    creates: list[tuple[int, SandboxObject]] = []
    for position, (entry, key) in enumerate(zip(inputs, keys, strict=True)):
        if not isinstance(entry, dict):
            results[position] = _not_an_object(position)
        elif key in stored:
            results[position] = _replayed(stored[key], key)
        elif (fault := _item_fault(faults, key or str(position), number)) == "503":
            results[position] = _retry_later(key)
        elif operation == "create" and fault != "422":
            try:
                services.validate(name, entry.get("data"))
                creates.append((position, services.object_new(account, name, entry.get("data"))))
            except (services.BadRequest, services.Invalid) as exc:
                results[position] = {"key": key, **_refused(exc)}
        else:
            results[position] = {"key": key, "fault": fault}  # applied below, in order
    try:
        with transaction.atomic():
            services.objects_create(account=account, objects=[obj for _, obj in creates])
            for position, obj in creates:
                results[position] = {
                    "key": keys[position],
                    "status": 201,
                    "id": obj.pk,
                    "record": services.serialize(obj),
                }
            for position, result in enumerate(results):
                if result is not None and "fault" in result:
                    results[position] = {
                        "key": result["key"],
                        **_apply(account, name, operation, inputs[position], result["fault"]),
                    }
            SandboxIdempotencyKey.objects.bulk_create(
                SandboxIdempotencyKey(
                    account=account,
                    key=key,
                    method=BATCH_METHOD,
                    path=path[:500],
                    body_hash=_body_hash(inputs[position]),
                    status=results[position]["status"],
                    response=json.dumps(results[position]),
                )
                for position, key in enumerate(keys)
                if key and key not in stored and results[position]["status"] != 503
            )
    except IntegrityError:
        return None
    return results


def _refused(exc: services.BadRequest | services.Invalid) -> dict:
    """An item's answer to bad data (400) or data that fails validation (422)."""
    if isinstance(exc, services.Invalid):
        return {"status": 422, "error": "validation failed", "fields": exc.fields}
    return {"status": 400, "error": str(exc)}


def _not_an_object(position: int) -> dict:
    return {"key": None, "status": 400, "error": f"input {position} is not an object"}


def _retry_later(key: str) -> dict:
    return {"key": key, "status": 503, "error": "injected item error (retryable)"}


def _body_hash(entry: dict) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


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
    except (services.BadRequest, services.Invalid) as exc:
        return _refused(exc)


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
