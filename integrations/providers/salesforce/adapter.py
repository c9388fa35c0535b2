"""Salesforce REST API: pull Contact and Account with SOQL, write them as sObjects.

Config (``Integration.config``): ``instance_url`` (required: the org's own URL, e.g.
``https://acme.my.salesforce.com`` — every call goes there, never to the login host),
``api_version`` (``v66.0``), ``external_id_field`` (API name of an External ID field, e.g.
``Castiel_Id__c``: creates become idempotent upserts), ``integration_user_id`` (the user
Castiel connects as, ``005…``: versions it last modified are our own writes coming back),
``fields`` (``{"Contact": ["Title", …]}``: extra fields to read), ``batch_size``
(200-2000 records per query batch).

* **Pull.** ``SELECT <fields> FROM <type> [WHERE SystemModstamp >= <watermark>] ORDER BY
  SystemModstamp, Id``; ``nextRecordsUrl`` continues it. An incremental run uses
  ``/queryAll`` so rows deleted since the watermark come back with ``IsDeleted = true``
  (tombstones); a full run uses ``/query``. SOQL datetimes have whole seconds, so the
  watermark is truncated and compared with ``>=`` (records in that second are read again:
  harmless).
* **Push.** Create ``POST /sobjects/{type}/`` or, with ``external_id_field``, upsert
  ``PATCH /sobjects/{type}/{field}/{idempotency key}`` — a retried create finds the record
  the first attempt made instead of making another (201 created / 200 or 204 already there);
  update ``PATCH /sobjects/{type}/{id}`` (204), delete ``DELETE`` (204). Updates are
  conditional: ``If-Unmodified-Since`` carries the ``LastModifiedDate`` Castiel last saw
  (the weak validator Salesforce accepts on every sObject row; ``If-Match`` ETags exist for
  Account only), and a 412 means someone changed the record since — the task's conflict
  strategy decides. Salesforce accepts no conditional headers on DELETE.
* **Batches** (``batch.py``): sObject Collections, 200 records per request — upsert creates
  (with ``external_id_field``), unconditional updates and deletes; conditional updates stay
  single requests with ``If-Unmodified-Since``.
* **Errors** are arrays of ``{"message", "errorCode", "fields"}``. A 401
  ``INVALID_SESSION_ID`` is refreshed once by the outbound client (the credential's
  ``on_unauthorized``) and retried; only a second 401 is reported. ``REQUEST_LIMIT_EXCEEDED``
  (403) is a rate limit: the org's rolling 24-hour allocation is spent, so work waits
  (``RETRY_AFTER_EXHAUSTED``) instead of failing. ``Sforce-Limit-Info`` feeds the limiter.

Over 400 lines on purpose: SOQL pull, sObject writes, conditional updates and the error
mapping are one provider's API surface, kept together in its folder.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from integrations.adapters import errors as E
from integrations.adapters.base import (
    AdapterConfigError,
    BatchSupport,
    InvalidCursor,
    MalformedPage,
    Page,
    PushResult,
    RemoteChanged,
)
from integrations.adapters.errors import provider_error
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.provider import ProviderAdapter
from integrations.providers.salesforce import batch

LOGIN_HOSTS = {"login.salesforce.com", "test.salesforce.com"}
API_VERSION = re.compile(r"^v\d{2,3}\.0$")
API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
USER_ID = re.compile(r"^005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
# The org's 24-hour allocation is rolling: capacity returns gradually, so look again in a
# quarter of an hour rather than guess a reset time Salesforce does not publish.
RETRY_AFTER_EXHAUSTED = 900.0
DEFAULT_BATCH_SIZE = 2000

# What is read per type (the documented standard fields the fixtures show); config "fields"
# adds more. Id, the timestamps and LastModifiedById are always read.
DEFAULT_FIELDS = {
    "Contact": ["FirstName", "LastName", "Email", "Phone", "AccountId"],
    "Account": ["Name", "Type", "Industry", "Website", "Phone", "BillingCity"],
}
SYSTEM_FIELDS = ["Id", "CreatedDate", "LastModifiedDate", "LastModifiedById", "SystemModstamp"]
# Never written: Salesforce owns them (and Contact.Name is a read-only compound of the parts).
READ_ONLY = {
    "Id",
    "attributes",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "LastActivityDate",
    "LastViewedDate",
    "LastReferencedDate",
    "MasterRecordId",
    "PhotoUrl",
}
READ_ONLY_BY_TYPE = {"Contact": {"Name"}}
# errorCode → reason (anything else falls back to the HTTP status).
REASONS = {
    "INVALID_SESSION_ID": E.INVALID_CREDENTIALS,
    "INVALID_AUTH_HEADER": E.INVALID_CREDENTIALS,
    "API_DISABLED_FOR_ORG": E.FORBIDDEN,
    "API_CURRENTLY_DISABLED": E.FORBIDDEN,
    "INSUFFICIENT_ACCESS": E.FORBIDDEN,
    "INSUFFICIENT_ACCESS_OR_READONLY": E.FORBIDDEN,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": E.FORBIDDEN,
    "NOT_FOUND": E.NOT_FOUND,
    "ENTITY_IS_DELETED": E.NOT_FOUND,
    "MALFORMED_QUERY": E.BAD_REQUEST,
    "INVALID_FIELD": E.BAD_REQUEST,
    "INVALID_TYPE": E.BAD_REQUEST,
    "NOT_FOUND_EXTERNAL_ID_FIELD": E.BAD_REQUEST,
    "REQUIRED_FIELD_MISSING": E.VALIDATION_FAILED,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": E.VALIDATION_FAILED,
    "INVALID_EMAIL_ADDRESS": E.VALIDATION_FAILED,
    "STRING_TOO_LONG": E.VALIDATION_FAILED,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": E.VALIDATION_FAILED,
    "DUPLICATE_VALUE": E.CONFLICT,
    "DUPLICATES_DETECTED": E.CONFLICT,
}
# Transient by Salesforce's own description (a row lock held by another transaction).
RETRYABLE_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}


def validate_config(config: dict) -> dict[str, str]:
    """Checks of the values present (missing required keys are the catalogue's to report)."""
    errors = {}
    url = config.get("instance_url")
    if url not in (None, ""):
        parts = urlsplit(str(url))
        if parts.scheme != "https" or not parts.hostname:
            errors["instance_url"] = (
                "instance_url must be your org's https URL, e.g. https://acme.my.salesforce.com."
            )
        elif parts.hostname.lower() in LOGIN_HOSTS:
            errors["instance_url"] = (
                f"{parts.hostname} is Salesforce's login host, not your org: use the "
                "instance_url the token response names (e.g. https://acme.my.salesforce.com)."
            )
        elif parts.path not in ("", "/") or parts.query or parts.username:
            errors["instance_url"] = "instance_url is the org's base URL only (no path)."
    version = config.get("api_version")
    if version not in (None, "") and not (isinstance(version, str) and API_VERSION.match(version)):
        errors["api_version"] = "api_version looks like 'v66.0'."
    field = config.get("external_id_field")
    if field not in (None, "") and not (isinstance(field, str) and API_NAME.match(field)):
        errors["external_id_field"] = "external_id_field is a field API name, e.g. Castiel_Id__c."
    user = config.get("integration_user_id")
    if user not in (None, "") and not (isinstance(user, str) and USER_ID.match(user)):
        errors["integration_user_id"] = "integration_user_id is a user id (005…, 15 or 18 chars)."
    extra = config.get("fields")
    if extra not in (None, ""):
        if not isinstance(extra, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) and API_NAME.match(n) for n in names)
            for names in extra.values()
        ):
            errors["fields"] = 'fields maps a type to field API names: {"Contact": ["Title"]}.'
    size = config.get("batch_size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 200 <= size <= 2000
    ):
        errors["batch_size"] = "batch_size must be an integer from 200 to 2000."
    return errors


def soql_datetime(value: str) -> str:
    """A watermark as a SOQL dateTime literal (UTC, whole seconds)."""
    moment = parse_timestamp(value)
    if moment is None:
        raise InvalidCursor(f"watermark {value!r} is not a timestamp")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceAdapter(ProviderAdapter):
    push_entities = ("Contact", "Account")

    @property
    def sobject(self) -> str:
        return self.entity_type

    @property
    def instance_url(self) -> str:
        return str(self.config.get("instance_url") or "").rstrip("/")

    @property
    def api_prefix(self) -> str:
        return urlsplit(self.api_base).path  # /services/data/v66.0

    def fields(self) -> list[str]:
        extra = (self.config.get("fields") or {}).get(self.sobject, [])
        names = [*SYSTEM_FIELDS, *DEFAULT_FIELDS.get(self.sobject, ["Name"]), *extra]
        return list(dict.fromkeys(names))

    # -- pull ----------------------------------------------------------------------------

    def validate_cursor(self, cursor):
        self.check_cursor_keys(cursor, next=str)
        if cursor is not None:
            nxt = cursor.get("next")
            if not isinstance(nxt, str) or not nxt.startswith("/services/data/"):
                raise InvalidCursor("cursor needs 'next', a query locator path on the instance")

    def soql(self, since: str | None, *, deleted: bool) -> str:
        names = self.fields() + (["IsDeleted"] if deleted else [])
        # Not user text: field names pass API_NAME (validate_config), the type is a catalogue
        # entity type and the datetime is formatted here.
        query = f"SELECT {', '.join(names)} FROM {self.sobject}"  # noqa: S608
        if since:
            query += f" WHERE SystemModstamp >= {soql_datetime(since)}"
        return query + " ORDER BY SystemModstamp, Id"

    def fetch_page(self, cursor, *, since=None) -> Page:
        self.require_pull()
        self.validate_cursor(cursor)
        batch = int(self.config.get("batch_size") or DEFAULT_BATCH_SIZE)
        headers = {"Sforce-Query-Options": f"batchSize={batch}"}
        if cursor:
            # nextRecordsUrl is a path on the instance (it already names the API version).
            response = self.request("GET", self.instance_url + cursor["next"], headers=headers)
        else:
            # Incremental: queryAll also returns rows deleted since the watermark.
            resource = "/queryAll" if since else "/query"
            response = self.request(
                "GET",
                resource,
                params={"q": self.soql(since, deleted=bool(since))},
                headers=headers,
            )
        body = self.json(response)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise MalformedPage("Salesforce query answer without 'records'")
        nxt = None if body.get("done", True) else body.get("nextRecordsUrl")
        return Page(
            records=[r for r in body["records"] if isinstance(r, dict)],
            next_cursor={"next": nxt} if nxt else None,
            rate_limit=self.rate_limit_info(response),
            info={"status": response.status_code, "total_size": body.get("totalSize")},
        )

    def external_id(self, record):
        value = record.get("Id")
        return str(value) if value else None

    def updated_at(self, record):
        return record.get("SystemModstamp") or record.get("LastModifiedDate")

    def is_deleted(self, record):
        return record.get("IsDeleted") is True

    def remote_version(self, record):
        # LastModifiedDate moves with user-visible edits; SystemModstamp also with system ones.
        return record.get("LastModifiedDate") or record.get("SystemModstamp")

    def modified_by_self(self, record):
        me = str(self.config.get("integration_user_id") or "")
        by = str(record.get("LastModifiedById") or "")
        # 15-character ids are case-sensitive prefixes of the 18-character form.
        return bool(me and by) and by[:15] == me[:15]

    @property
    def identity_fields(self):
        return ("Id", "attributes", "SystemModstamp", "LastModifiedDate", "LastModifiedById")

    # -- push ----------------------------------------------------------------------------

    @property
    def external_id_field(self) -> str:
        return str(self.config.get("external_id_field") or "")

    @property
    def supports_idempotency_keys(self) -> bool:
        return bool(self.external_id_field)

    # A retried create needs no lookup first: the upsert by External ID is the lookup (it
    # answers "already there" instead of creating again). find_created serves the 204 case.
    can_find_created = False

    @property
    def read_only_fields(self):
        return tuple(READ_ONLY | READ_ONLY_BY_TYPE.get(self.sobject, set()))

    def writable(self, payload: dict) -> dict:
        read_only = set(self.read_only_fields)
        # Relationship and compound values (objects) are read-only in the REST API.
        return {k: v for k, v in payload.items() if k not in read_only and not isinstance(v, dict)}

    def _item(self, external_id: str) -> str:
        if not RECORD_ID.match(str(external_id)):
            raise AdapterConfigError(f"{external_id!r} is not a Salesforce record id")
        return f"/sobjects/{self.sobject}/{external_id}"

    def _by_external_id(self, key: str) -> str:
        return f"/sobjects/{self.sobject}/{self.external_id_field}/{quote(key, safe='')}"

    def get_one(self, external_id):
        self.require_push("read")
        try:
            response = self.request(
                "GET", self._item(external_id), params={"fields": ",".join(self.fields())}
            )
        except E.ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        record = self.json(response)
        return PushResult(
            external_id=str(record.get("Id") or external_id),
            record=record,
            version=self.remote_version(record),
            status=response.status_code,
        )

    def create(self, payload, *, idempotency_key):
        self.require_push("create")
        body = self.writable(payload)
        if self.external_id_field:
            body.pop(self.external_id_field, None)  # the key is in the URL
            response = self.request(
                "PATCH",
                self._by_external_id(idempotency_key),
                operation="create",
                record=True,
                json=body,
            )
            answer = self.body_of(response) if response.content else None
            if isinstance(answer, dict) and answer.get("id"):
                record_id = str(answer["id"])
                replayed = answer.get("created") is False
            else:
                # 204 (API < 46.0): the record existed already; read its id back.
                found = self.find_created(idempotency_key)
                if found is None:
                    raise MalformedPage("Salesforce upsert answered 204 but the record is missing")
                record_id, replayed = str(found["Id"]), True
            return PushResult(
                external_id=record_id, record=None, replayed=replayed, status=response.status_code
            )
        response = self.request(
            "POST", f"/sobjects/{self.sobject}/", operation="create", record=True, json=body
        )
        answer = self.json(response)
        if not isinstance(answer, dict) or not answer.get("id"):
            raise MalformedPage("Salesforce create answered without an id")
        # The answer is {"id", "success", "errors"}: the worker reads the record back.
        return PushResult(external_id=str(answer["id"]), record=None, status=response.status_code)

    supports_conditional_writes = True  # updates only (see the module docstring)

    def update(self, external_id, payload, *, idempotency_key, if_version=None):
        self.require_push("update")
        headers = {}
        if if_version:
            since = unmodified_since(if_version)
            if since is None:  # not one of Salesforce's timestamps: compare by reading
                current = self.get_one(external_id)
                if current is not None and current.version != if_version:
                    raise RemoteChanged(f"{self.sobject} {external_id} changed since {if_version}")
            else:
                headers["If-Unmodified-Since"] = since
        try:
            response = self.request(
                "PATCH",
                self._item(external_id),
                operation="update",
                record=True,
                json=self.writable(payload),
                headers=headers or None,
            )
        except E.ProviderError as exc:
            if exc.status == 412:
                raise RemoteChanged(
                    f"{self.sobject} {external_id} was modified after {if_version}"
                ) from None
            raise
        return PushResult(external_id=external_id, record=None, status=response.status_code)

    def delete(self, external_id, *, idempotency_key, if_version=None):
        self.require_push("delete")
        response = self.request("DELETE", self._item(external_id), operation="delete", record=True)
        return PushResult(external_id=external_id, record=None, status=response.status_code)

    @property
    def batch_support(self) -> BatchSupport:
        """sObject Collections (``batch.py``): unconditional updates and deletes always; creates
        when they are upserts by External ID (idempotent, so a batch may be sent again)."""
        operations = {"update", "delete"} | ({"create"} if self.external_id_field else set())
        return BatchSupport(
            operations=frozenset(operations),
            max_size=batch.MAX_RECORDS,
            idempotent_creates=bool(self.external_id_field),
        )

    def push_many(self, operation, items):
        self.require_push(operation)
        return batch.push_many(self, operation, items)

    def find_created(self, idempotency_key, *, payload=None):
        if not self.external_id_field:
            return None
        try:
            response = self.request(
                "GET",
                self._by_external_id(idempotency_key),
                params={"fields": ",".join(self.fields())},
            )
        except E.ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        record = self.json(response)
        return record if isinstance(record, dict) and record.get("Id") else None

    # -- errors and test connection -------------------------------------------------------

    def error_for(self, response, *, what):
        status = response.status_code
        if status < 300:
            return None
        body = self.body_of(response)
        if status == 300:
            # Upsert: the external id matched several records (the body lists their URLs).
            matches = body if isinstance(body, list) else []
            return provider_error(
                response,
                what=what,
                reason=E.CONFLICT,
                message=f"the External ID matches {len(matches)} records",
                details={"matches": matches},
                status=300,
            )
        if status < 400:
            return None
        first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
        code = str(first.get("errorCode") or "")
        message = str(first.get("message") or "")
        details: dict[str, Any] = {}
        if first.get("fields"):
            details["fields"] = first["fields"]
        if isinstance(body, list) and len(body) > 1:
            details["errors"] = body
        if code == "REQUEST_LIMIT_EXCEEDED":
            return provider_error(
                response,
                what=what,
                provider_code=code,
                message=f"{message} The org's rolling 24-hour API allocation is used up "
                f"({response.headers.get('Sforce-Limit-Info', 'no usage header')}).",
                rate_limited=True,
                retry_after=RETRY_AFTER_EXHAUSTED,
            )
        if status == 404 and body is None:
            message = "not a Salesforce REST API address (check instance_url and api_version)"
        return provider_error(
            response,
            what=what,
            reason=REASONS.get(code),
            provider_code=code,
            message=message,
            details=details,
            retryable=True if code in RETRYABLE_CODES else None,
        )

    def connection_details(self, response):
        body = self.json(response)
        if not isinstance(body, dict) or "DailyApiRequests" not in body:
            raise MalformedPage(
                "the instance answered, but not with Salesforce's /limits: check instance_url"
            )
        daily = body["DailyApiRequests"]
        return {
            "instance_url": self.instance_url,
            "api_version": self.config.get("api_version"),
            "daily_api_requests": {"max": daily.get("Max"), "remaining": daily.get("Remaining")},
        }


def unmodified_since(version: str) -> str | None:
    """``LastModifiedDate`` as an HTTP date for ``If-Unmodified-Since`` (or None).

    HTTP dates have whole seconds: a fraction is rounded *up*, or the record's own
    modification (say 08:12:40.250) would count as "after" the precondition (08:12:40) and
    every update would be refused. Salesforce's timestamps carry ``.000`` in practice.
    """
    moment = parse_timestamp(version)
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return format_datetime(moment, usegmt=True)
