"""Salesforce sObject Collections: up to :data:`MAX_RECORDS` (200) records per request, each
succeeding or failing on its own (``allOrNone: false``), results in the request's order.

* **create** — only with ``external_id_field``, as an upsert collection
  ``PATCH /composite/sobjects/{type}/{field}`` (API 46.0+) whose records carry the change's
  idempotency key in that field: a batch sent again after a lost answer finds the records the
  first one made (``created: false``) instead of making them twice. Without an External ID
  field creates stay single (a plain ``POST /composite/sobjects`` could not be retried safely).
* **update** — ``PATCH /composite/sobjects`` with each record's ``id``. A collection takes no
  ``If-Unmodified-Since``, so only *unconditional* updates are batched (forced pushes, records
  with no version yet); conditional ones keep their single ``PATCH`` with the header
  (``syncing/outbound/batches.py`` sends them one by one).
* **delete** — ``DELETE /composite/sobjects?ids=…&allOrNone=false``; a record already deleted
  (``ENTITY_IS_DELETED``) counts as deleted, as a single delete's 404 does.

The answer is 200 with one ``SaveResult`` / ``UpsertResult`` / ``DeleteResult`` per record,
``{"id", "success", "errors": [{"statusCode", "message", "fields"}], "created"}``. The
records written are read back in one more request (``GET /composite/sobjects/{type}?ids=…``,
up to 2,000 ids), so the push worker knows what Salesforce holds without one GET per record:
two requests per batch instead of two per record. Sources: integrations/providers/
salesforce/fixtures/SOURCES.md.
"""

from __future__ import annotations

from integrations.adapters.base import BatchItem, ItemFailed, ItemOutcome, MalformedPage, PushResult

MAX_RECORDS = 200
#: statusCode → (HTTP status it stands for, retryable)
STATUS_CODES = {
    "ENTITY_IS_DELETED": (404, False),
    "INVALID_CROSS_REFERENCE_KEY": (404, False),
    "MALFORMED_ID": (400, False),
    "REQUIRED_FIELD_MISSING": (400, False),
    "INVALID_FIELD": (400, False),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (400, False),
    "STRING_TOO_LONG": (400, False),
    "DUPLICATE_VALUE": (409, False),
    "DUPLICATES_DETECTED": (409, False),
    "UNABLE_TO_LOCK_ROW": (409, True),
    "REQUEST_LIMIT_EXCEEDED": (403, True),
}


def push_many(adapter, operation: str, items: list[BatchItem]) -> dict[str, ItemOutcome]:
    prefix = "/composite/sobjects"
    if operation == "delete":
        response = adapter.request(
            "DELETE",
            prefix,
            operation="delete",
            record=True,
            params={"ids": ",".join(str(i.external_id) for i in items), "allOrNone": "false"},
        )
    else:
        records = []
        for item in items:
            body = {"attributes": {"type": adapter.sobject}, **adapter.writable(item.payload or {})}
            if operation == "create":
                body[adapter.external_id_field] = item.key
            else:
                body["id"] = item.external_id
            records.append(body)
        path = (
            f"{prefix}/{adapter.sobject}/{adapter.external_id_field}"
            if operation == "create"
            else prefix
        )
        response = adapter.request(
            "PATCH",
            path,
            operation=operation,
            record=True,
            json={"allOrNone": False, "records": records},
        )
    results = adapter.json(response)
    if not isinstance(results, list) or len(results) != len(items):
        raise MalformedPage("Salesforce collection answered without one result per record")
    outcomes: dict[str, ItemOutcome] = {}
    written: dict[str, tuple[BatchItem, str, bool]] = {}
    for item, result in zip(items, results, strict=True):
        result = result if isinstance(result, dict) else {}
        if result.get("success"):
            record_id = str(result.get("id") or item.external_id or "")
            if not record_id:
                raise MalformedPage("Salesforce collection result without an id")
            written[item.key] = (item, record_id, result.get("created") is False)
            continue
        failure = _failure(result.get("errors") or [])
        if operation == "delete" and failure.status == 404:
            written[item.key] = (item, str(item.external_id), False)
            continue
        outcomes[item.key] = ItemOutcome(error=failure)
    if operation == "delete":
        for key, (_item, record_id, _replayed) in written.items():
            outcomes[key] = ItemOutcome(
                result=PushResult(external_id=record_id, status=response.status_code)
            )
        return outcomes
    current = read_back(adapter, [record_id for _item, record_id, _r in written.values()])
    for key, (_item, record_id, replayed) in written.items():
        record = current.get(record_id)
        outcomes[key] = ItemOutcome(
            result=PushResult(
                external_id=record_id,
                record=record,
                version=adapter.remote_version(record) if record else None,
                replayed=replayed,
                status=response.status_code,
            )
        )
    return outcomes


def read_back(adapter, record_ids: list[str]) -> dict[str, dict]:
    """The records as Salesforce holds them, in one request (None entries: deleted since)."""
    if not record_ids:
        return {}
    response = adapter.request(
        "GET",
        f"/composite/sobjects/{adapter.sobject}",
        params={"ids": ",".join(record_ids), "fields": ",".join(adapter.fields())},
    )
    rows = adapter.json(response)
    if not isinstance(rows, list):
        raise MalformedPage("Salesforce collection read answered without a list")
    return {str(row["Id"]): row for row in rows if isinstance(row, dict) and row.get("Id")}


def _failure(errors: list) -> ItemFailed:
    first = next((e for e in errors if isinstance(e, dict)), {})
    code = str(first.get("statusCode") or "")
    status, retryable = STATUS_CODES.get(code, (400, False))
    fields = first.get("fields") or []
    where = f" ({', '.join(map(str, fields))})" if fields else ""
    return ItemFailed(
        f"Salesforce collection item: {code or 'error'}: {first.get('message') or ''}{where}"[
            :1000
        ],
        status=status,
        retryable=retryable,
        code=f"salesforce_{code.lower()}" if code else "",
    )
