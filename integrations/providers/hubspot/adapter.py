"""HubSpot CRM v3: pull contacts and companies, create, update and archive them.

Config (``Integration.config``): ``properties`` (``{"contacts": ["email", …]}``: the
properties to read; defaults below), ``page_size`` (1-100 for lists; searches use 200),
``unique_id_property`` (internal name of a custom property created with
``hasUniqueValue: true`` on the pushed object types, e.g. ``castiel_id``: creates become
idempotent).

* **Pull.** A full run lists ``GET /crm/v3/objects/{type}?limit&after&properties`` (the next
  cursor is ``paging.next.after``). An incremental run searches
  ``POST /crm/v3/objects/{type}/search`` for ``lastmodifieddate`` (contacts) or
  ``hs_lastmodifieddate`` (companies) ``GTE`` the watermark in epoch milliseconds, sorted
  ascending. A search stops at 10,000 results, so before reaching that the adapter starts a
  new search anchored on the last timestamp it read (the records at that instant are read
  twice: harmless). Archived objects are not listed: deletions arrive by webhook
  (``*.deletion``) or with a full refresh.
* **Push.** ``POST`` (201), ``PATCH /{id}`` (200, only the properties sent change),
  ``DELETE /{id}`` (204, archives). A record is ``{"id", "properties": {…}, …}``; flat fields
  in a write are taken as properties too, ``None`` clears one (HubSpot clears with ``""``).
  HubSpot has no idempotency keys: creating a contact whose email exists answers 409
  "Existing ID: N", which a retried create takes as its own earlier success. With
  ``unique_id_property`` every create also writes the change's idempotency key to that
  property, and a retried create first reads ``GET /{key}?idProperty=<property>`` (a
  strongly consistent read by unique value, unlike search): the record an attempt whose
  answer was lost made is adopted instead of created twice — companies too, which have no
  unique property of their own. HubSpot refuses a second record with the same value (409).
* **Batches** (``batch.py``): changes pushed together go to ``…/batch/update`` and
  ``…/batch/archive`` (and ``…/batch/create`` with ``unique_id_property``), 100 per request;
  207 multi-status answers fail only the inputs they name.
* **Limits.** ``X-HubSpot-RateLimit-*`` feed the limiter; a 429 names its policy
  (``TEN_SECONDLY_ROLLING`` → wait the interval, ``SECONDLY`` → 1 s, ``DAILY`` → resets at
  midnight in the account's time zone, which HubSpot does not say: look again hourly).
* **Errors** ``{"status": "error", "message", "category", "errors", "correlationId"}``;
  ``MISSING_SCOPES`` names the scopes to grant in ``errors[].context.requiredGranularScopes``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from integrations.adapters import errors as E
from integrations.adapters.base import (
    BatchSupport,
    InvalidCursor,
    MalformedPage,
    Page,
    PushResult,
)
from integrations.adapters.errors import provider_error
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.provider import ProviderAdapter
from integrations.providers.hubspot import batch

DEFAULT_PROPERTIES = {
    "contacts": ["email", "firstname", "lastname", "phone", "company"],
    "companies": ["name", "domain"],
}
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
READ_ONLY_PROPERTIES = {
    "hs_object_id",
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
    "hs_createdate",
}
RECORD_KEYS = {"id", "properties", "createdAt", "updatedAt", "archived", "archivedAt"}
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
RETRY_AFTER = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0, "DAILY": 3600.0}


def validate_config(config: dict) -> dict[str, str]:
    errors = {}
    properties = config.get("properties")
    if properties not in (None, ""):
        if not isinstance(properties, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) and n for n in names)
            for names in properties.values()
        ):
            errors["properties"] = 'properties maps a type to names: {"contacts": ["email"]}.'
    unique = config.get("unique_id_property")
    if unique not in (None, "") and not (isinstance(unique, str) and PROPERTY_NAME.match(unique)):
        errors["unique_id_property"] = (
            "unique_id_property is the internal name of a HubSpot property (e.g. castiel_id)."
        )
    size = config.get("page_size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 100
    ):
        errors["page_size"] = "page_size must be an integer from 1 to 100."
    return errors


def epoch_ms(value: str) -> int:
    moment = parse_timestamp(value)
    if moment is None:
        raise InvalidCursor(f"watermark {value!r} is not a timestamp")
    return int(moment.timestamp() * 1000)


class HubSpotAdapter(ProviderAdapter):
    push_entities = ("contacts", "companies")

    @property
    def unique_id_property(self) -> str:
        return str(self.config.get("unique_id_property") or "")

    @property
    def can_find_created(self) -> bool:
        return bool(self.unique_id_property)

    def find_created(self, idempotency_key, *, payload=None):
        """The record an earlier attempt of this create made (read by its unique value)."""
        if not self.unique_id_property:
            return None
        try:
            response = self.request(
                "GET",
                f"{self.objects_path}/{quote(idempotency_key, safe='')}",
                params={
                    "idProperty": self.unique_id_property,
                    "properties": ",".join(self.properties()),
                },
            )
        except E.ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        record = self.json(response)
        return record if isinstance(record, dict) and record.get("id") else None

    @property
    def objects_path(self) -> str:
        return f"/crm/v3/objects/{self.entity_type}"

    def properties(self) -> list[str]:
        configured = (self.config.get("properties") or {}).get(self.entity_type)
        names = configured or DEFAULT_PROPERTIES.get(self.entity_type, [])
        return list(dict.fromkeys([*names, MODIFIED.get(self.entity_type, "lastmodifieddate")]))

    # -- pull ----------------------------------------------------------------------------

    def validate_cursor(self, cursor):
        self.check_cursor_keys(cursor, after=str, since=str, mode=str)
        if cursor is not None and cursor.get("mode") not in ("list", "search"):
            raise InvalidCursor("cursor 'mode' must be 'list' or 'search'")

    def fetch_page(self, cursor, *, since=None) -> Page:
        self.require_pull()
        self.validate_cursor(cursor)
        mode = (cursor or {}).get("mode") or ("search" if since else "list")
        after = (cursor or {}).get("after")
        if mode == "list":
            params = {
                "limit": int(self.config.get("page_size") or 100),
                "properties": ",".join(self.properties()),
            }
            if after:
                params["after"] = after
            response = self.request("GET", self.objects_path, params=params)
            body = self._results(response)
            token = ((body.get("paging") or {}).get("next") or {}).get("after")
            nxt = {"mode": "list", "after": str(token)} if token else None
            return self._page(response, body, nxt)
        anchor = (cursor or {}).get("since") or since
        modified = MODIFIED.get(self.entity_type, "lastmodifieddate")
        query: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": modified, "operator": "GTE", "value": epoch_ms(anchor)}
                    ]
                }
            ],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": self.properties(),
            "limit": SEARCH_PAGE,
        }
        if after:
            query["after"] = after
        response = self.request("POST", f"{self.objects_path}/search", json=query)
        body = self._results(response)
        token = ((body.get("paging") or {}).get("next") or {}).get("after")
        nxt = None
        if token:
            if str(token).isdigit() and int(token) + SEARCH_PAGE > SEARCH_CAP and body["results"]:
                # The next page would cross HubSpot's 10,000-result cap: search again from
                # the last timestamp read.
                last = self.updated_at(body["results"][-1]) or anchor
                if last == anchor:
                    raise MalformedPage(
                        f"more than {SEARCH_CAP} HubSpot {self.entity_type} share the "
                        f"modification time {anchor}; run a full refresh instead"
                    )
                nxt = {"mode": "search", "since": last, "after": None}
            else:
                nxt = {"mode": "search", "since": anchor, "after": str(token)}
        return self._page(response, body, nxt)

    def _results(self, response) -> dict:
        body = self.json(response)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise MalformedPage("HubSpot answer without 'results'")
        return body

    def _page(self, response, body, nxt) -> Page:
        return Page(
            records=[r for r in body["results"] if isinstance(r, dict)],
            next_cursor=nxt,
            rate_limit=self.rate_limit_info(response),
            info={"status": response.status_code, "total": body.get("total")},
        )

    def external_id(self, record):
        value = record.get("id")
        return str(value) if value not in (None, "") else None

    def updated_at(self, record):
        return record.get("updatedAt")

    def is_deleted(self, record):
        return record.get("archived") is True

    def remote_version(self, record):
        return record.get("updatedAt")

    @property
    def identity_fields(self):
        return ("id", "createdAt", "updatedAt", "archived")

    # -- push ----------------------------------------------------------------------------

    def writable(self, payload: dict) -> dict:
        properties = dict(payload.get("properties") or {})
        for key, value in payload.items():
            if key not in RECORD_KEYS:
                properties.setdefault(key, value)
        return {
            "properties": {
                key: "" if value is None else value
                for key, value in properties.items()
                if key not in READ_ONLY_PROPERTIES
            }
        }

    @property
    def batch_support(self) -> BatchSupport:
        """Batch update and archive always; batch create when creates write a unique value
        (results are matched by it; ``batch.py``)."""
        operations = {"update", "delete"} | ({"create"} if self.unique_id_property else set())
        return BatchSupport(operations=frozenset(operations), max_size=batch.MAX_INPUTS)

    def push_many(self, operation, items):
        self.require_push(operation)
        return batch.push_many(self, operation, items)

    def _result_from(self, record: dict, status: int) -> PushResult:
        return PushResult(
            external_id=str(record.get("id")),
            record=record,
            version=record.get("updatedAt"),
            status=status,
        )

    def _result(self, response, fallback_id: str | None = None, replayed=False) -> PushResult:
        record = self.json(response)
        return PushResult(
            external_id=str(record.get("id") or fallback_id),
            record=record,
            version=record.get("updatedAt"),
            replayed=replayed,
            status=response.status_code,
        )

    def get_one(self, external_id):
        self.require_push("read")
        try:
            response = self.request(
                "GET",
                f"{self.objects_path}/{external_id}",
                params={"properties": ",".join(self.properties())},
            )
        except E.ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return self._result(response, external_id)

    def create(self, payload, *, idempotency_key):
        self.require_push("create")
        body = self.writable(payload)
        if self.unique_id_property:
            body["properties"][self.unique_id_property] = idempotency_key
        try:
            response = self.request(
                "POST",
                self.objects_path,
                operation="create",
                record=True,
                json=body,
            )
        except E.ProviderError as exc:
            existing = exc.details.get("existing_id")
            if exc.reason == E.CONFLICT and existing and self.entity_type == "contacts":
                # The contact's email exists: an earlier attempt of this create (whose
                # answer was lost) or the same person entered in HubSpot. Either way that
                # is the record this create stands for.
                found = self.get_one(existing)
                if found is not None:
                    found.replayed = True
                    return found
            raise
        return self._result(response)

    def update(self, external_id, payload, *, idempotency_key, if_version=None):
        self.require_push("update")
        response = self.request(
            "PATCH",
            f"{self.objects_path}/{external_id}",
            operation="update",
            record=True,
            json=self.writable(payload),
        )
        return self._result(response, external_id)

    def delete(self, external_id, *, idempotency_key, if_version=None):
        self.require_push("delete")
        response = self.request(
            "DELETE", f"{self.objects_path}/{external_id}", operation="delete", record=True
        )
        return PushResult(external_id=external_id, record=None, status=response.status_code)

    # -- errors --------------------------------------------------------------------------

    def error_for(self, response, *, what):
        status = response.status_code
        if status < 400:
            return None
        body = self.body_of(response)
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or "")
        category = str(body.get("category") or body.get("errorType") or "")
        details: dict[str, Any] = {}
        if body.get("correlationId"):
            details["correlation_id"] = body["correlationId"]
        if status == 429 or category == "RATE_LIMIT":
            policy = str(body.get("policyName") or "")
            retry_after = RETRY_AFTER.get(policy)
            if policy == "TEN_SECONDLY_ROLLING":
                interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                if interval and interval.isdigit():
                    retry_after = int(interval) / 1000
            if policy == "DAILY":
                message += " (the daily limit resets at midnight in the account's time zone)"
            return provider_error(
                response,
                what=what,
                provider_code=policy or category,
                message=message,
                rate_limited=True,
                retry_after=retry_after,
                details={**details, "policy": policy},
            )
        reason = {
            "INVALID_AUTHENTICATION": E.INVALID_CREDENTIALS,
            "EXPIRED_AUTHENTICATION": E.INVALID_CREDENTIALS,
            "MISSING_SCOPES": E.MISSING_SCOPE,
            "VALIDATION_ERROR": E.VALIDATION_FAILED,
            "CONFLICT": E.CONFLICT,
            "OBJECT_NOT_FOUND": E.NOT_FOUND,
        }.get(category)
        if category == "MISSING_SCOPES":
            scopes = [
                scope
                for item in body.get("errors") or []
                if isinstance(item, dict)
                for scope in ((item.get("context") or {}).get("requiredGranularScopes") or [])
            ]
            details["required_scopes"] = scopes
            if scopes:
                message += f" Grant: {', '.join(scopes)}."
        if category == "CONFLICT":
            found = EXISTING_ID.search(message)
            if found:
                details["existing_id"] = found.group(1)
        return provider_error(
            response,
            what=what,
            reason=reason,
            provider_code=category,
            message=message,
            details=details,
        )

    def connection_details(self, response):
        self._results(response)  # the contacts list came back: token and read scope work
        headers = response.headers
        details = {}
        for key, header in (
            ("requests_per_10s", "X-HubSpot-RateLimit-Max"),
            ("daily_limit", "X-HubSpot-RateLimit-Daily"),
            ("daily_remaining", "X-HubSpot-RateLimit-Daily-Remaining"),
        ):
            if headers.get(header, "").isdigit():
                details[key] = int(headers[header])
        return details
