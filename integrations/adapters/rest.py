"""The generic REST adapter: any paginated JSON list endpoint, configured per integration.

Configuration lives in ``Integration.config`` (validated by the ``generic_rest`` provider);
keys at the top level are defaults and ``entities.<entity_type>`` overrides them::

    {
      "base_url": "https://api.example.com",
      "list_path": "/contacts",            # default "/<entity_type>"
      "records_path": "data",              # where the list is in the body ("" = the body)
      "id_field": "id",
      "updated_at_field": "updatedAt",
      "since_param": "updatedAt:gte",      # incremental filter (json-server 1.0 syntax)
      "since_format": "iso",               # iso | epoch | epoch_ms
      "deleted_field": "deleted",          # truthy → tombstone
      "params": {"_sort": "updatedAt"},    # fixed query parameters
      "pagination": {"style": "page", "page_param": "_page", "size_param": "_per_page",
                     "page_size": 100, "next_page_path": "next"},
      "entities": {"deals": {"list_path": "/v2/deals"}}
    }

Push (outbound) options, all optional::

      "item_path": "/contacts/{id}",        # default "<list_path>/{id}"
      "create_path": "/contacts",           # default list_path
      "record_path": "",                    # where one record is in a write/get answer
      "update_method": "PATCH",             # PATCH: only changed fields; PUT: the whole record
      "idempotency_header": "Idempotency-Key",  # sent with the change's key on every write
      "marker_field": "castiel_id",         # without idempotency keys: written on create and
                                            # looked up (?castiel_id=…) before a retried create
      "version_field": "updated_at",        # the record's version (default updated_at_field)
      "version_header": "ETag",             # …or a response header carrying it
      "conditional_writes": false,          # send If-Match: <version>; 412 → remote changed
      "read_only_fields": ["created_at"],   # never sent (id/updated-at/deleted fields never are)
      "modified_by_field": "updated_by",    # with self_user: versions our own user made are
      "self_user": "castiel-bot",           # echoes, not remote changes
      "batch_path": "/contacts/batch/{operation}",  # a bulk endpoint (``rest_batch.py``):
      "batch_max_size": 100,                # items per request
      "batch_operations": ["create", "update", "delete"],

Authentication comes from the integration's credential through ``client_for`` — never from
this config, which is visible in the API.

Over 400 lines on purpose: the whole configuration surface of the generic adapter (paths,
fields, filters, writes, error shapes) reads in one place; its paging styles live in
``pagination.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from castiel.http.errors import HttpError
from integrations.adapters import rest_batch
from integrations.adapters.base import (
    Adapter,
    AdapterConfigError,
    BatchSupport,
    InvalidCursor,
    MalformedPage,
    Page,
    PushResult,
    RateLimitInfo,
    RemoteChanged,
    json_body,
)
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.pagination import STYLES, dig, paginator_for

OPTION_KEYS = {
    "base_url",
    "oauth",  # OAuth2 client settings for the credential (credentials/oauth.py)
    "display_fields",  # what shows a record, per entity type (ProviderInfo.display_fields)
    "list_path",
    "records_path",
    "id_field",
    "updated_at_field",
    "since_param",
    "since_format",
    "deleted_field",
    "params",
    "pagination",
    "entities",
    # push
    "item_path",
    "create_path",
    "record_path",
    "update_method",
    "idempotency_header",
    "marker_field",
    "version_field",
    "version_header",
    "conditional_writes",
    "read_only_fields",
    "modified_by_field",
    "self_user",
    "batch_path",
    "batch_max_size",
    "batch_operations",
}
STRING_OPTIONS = (
    "list_path",
    "records_path",
    "id_field",
    "updated_at_field",
    "since_param",
    "item_path",
    "create_path",
    "record_path",
    "idempotency_header",
    "marker_field",
    "version_field",
    "version_header",
    "modified_by_field",
    "self_user",
)
SINCE_FORMATS = ("iso", "epoch", "epoch_ms")
UPDATE_METHODS = ("PATCH", "PUT")


def entity_options(config: dict, entity_type: str) -> dict[str, Any]:
    """Top-level defaults merged with ``entities[entity_type]`` (pagination merged too)."""
    base = {k: v for k, v in (config or {}).items() if k != "entities"}
    override = ((config or {}).get("entities") or {}).get(entity_type) or {}
    merged = {**base, **override}
    merged["pagination"] = {**(base.get("pagination") or {}), **(override.get("pagination") or {})}
    merged.setdefault("list_path", f"/{entity_type}")
    merged.setdefault("records_path", "")
    merged.setdefault("id_field", "id")
    merged.setdefault("updated_at_field", "")
    merged.setdefault("since_param", "")
    merged.setdefault("since_format", "iso")
    merged.setdefault("deleted_field", "")
    merged.setdefault("params", {})
    merged.setdefault("item_path", merged["list_path"].rstrip("/") + "/{id}")
    merged.setdefault("create_path", merged["list_path"])
    merged.setdefault("record_path", "")
    merged.setdefault("update_method", "PATCH")
    merged.setdefault("idempotency_header", "")
    merged.setdefault("marker_field", "")
    merged.setdefault("version_field", merged["updated_at_field"])
    merged.setdefault("version_header", "")
    merged.setdefault("conditional_writes", False)
    merged.setdefault("read_only_fields", [])
    merged.setdefault("modified_by_field", "")
    merged.setdefault("self_user", "")
    merged.setdefault("batch_path", "")
    merged.setdefault("batch_max_size", 100)
    merged.setdefault("batch_operations", ["create", "update", "delete"])
    return merged


def validate_config(config: dict) -> dict[str, str]:
    """Field errors for a generic REST integration config (empty when valid)."""
    errors: dict[str, str] = {}
    url = config.get("base_url")
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors["base_url"] = "base_url must be an absolute http(s) URL."
        elif parts.username or parts.password:
            errors["base_url"] = "Put credentials in a credential, not in base_url."
    unknown = set(config) - OPTION_KEYS
    if unknown:
        errors["config"] = f"Unknown keys: {', '.join(sorted(unknown))}."
    entities = config.get("entities", {})
    if not isinstance(entities, dict) or not all(isinstance(v, dict) for v in entities.values()):
        errors["entities"] = "entities must map entity types to option objects."
        return errors
    for entity_type in [None, *entities]:
        options = entity_options(config, entity_type or "_")
        prefix = f"entities.{entity_type}." if entity_type else ""
        for key, message in _option_errors(options).items():
            errors.setdefault(prefix + key, message)
    return errors


def _option_errors(options: dict) -> dict[str, str]:
    errors = {}
    for key in STRING_OPTIONS:
        if not isinstance(options.get(key), str):
            errors[key] = f"{key} must be a string."
    if not options.get("id_field"):
        errors["id_field"] = "id_field must not be empty."
    if isinstance(options.get("item_path"), str) and "{id}" not in options["item_path"]:
        errors["item_path"] = "item_path must contain {id}."
    if options.get("update_method") not in UPDATE_METHODS:
        errors["update_method"] = f"update_method must be one of {', '.join(UPDATE_METHODS)}."
    if not isinstance(options.get("conditional_writes"), bool):
        errors["conditional_writes"] = "conditional_writes must be true or false."
    read_only = options.get("read_only_fields")
    if not isinstance(read_only, list) or not all(isinstance(f, str) for f in read_only):
        errors["read_only_fields"] = "read_only_fields must be a list of field names."
    errors.update(rest_batch.options_errors(options))
    if options.get("since_format") not in SINCE_FORMATS:
        errors["since_format"] = f"since_format must be one of {', '.join(SINCE_FORMATS)}."
    if not isinstance(options.get("params"), dict):
        errors["params"] = "params must be an object of query parameters."
    pagination = options.get("pagination")
    if not isinstance(pagination, dict):
        errors["pagination"] = "pagination must be an object."
    else:
        style = pagination.get("style", "page")
        if style not in STYLES:
            errors["pagination.style"] = f"style must be one of {', '.join(STYLES)}."
        elif style == "since" and not options.get("updated_at_field"):
            errors["pagination.style"] = "since pagination needs updated_at_field."
        else:
            try:
                paginator_for(pagination, origin="", updated_at=str, external_id=str).validate()
            except AdapterConfigError as exc:
                errors["pagination"] = str(exc)
    return errors


def _bare_etag(value: str | None) -> str | None:
    """An ETag without its weak marker and quotes (compared with body versions; If-Match
    quotes it again)."""
    if not value:
        return None
    value = value.strip().removeprefix("W/")
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def format_since(value: str | None, fmt: str) -> str | None:
    if not value or fmt == "iso":
        return value
    moment = parse_timestamp(value)
    if moment is None:
        raise InvalidCursor(f"since value {value!r} is not a timestamp")
    seconds = moment.timestamp()
    return str(int(seconds * 1000) if fmt == "epoch_ms" else int(seconds))


class GenericRestAdapter(Adapter):
    def __init__(self, integration, entity_type: str, *, client=None):
        super().__init__(integration, entity_type, client=client)
        self.options = entity_options(integration.config or {}, entity_type)
        base_url = self.options.get("base_url") or ""
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
        self.paginator = paginator_for(
            self.options["pagination"],
            origin=self.origin,
            updated_at=self.updated_at,
            external_id=self.external_id,
        )

    # -- contract ------------------------------------------------------------------------

    def validate(self) -> None:
        errors = validate_config(self.integration.config or {})
        if errors:
            raise AdapterConfigError(
                "; ".join(f"{key}: {message}" for key, message in sorted(errors.items()))
            )

    def validate_cursor(self, cursor):
        self.paginator.validate_cursor(cursor)

    def fetch_page(self, cursor: dict | None, *, since: str | None = None) -> Page:
        self.validate_cursor(cursor)
        since_value = format_since(since, self.options["since_format"])
        url, params = self.paginator.request(cursor, since_value)
        query: dict[str, Any] = {}
        if url is None:  # the Link style's next URL already carries every parameter
            query.update(self.options["params"])
            if since_value and self.options["since_param"] and self.paginator.style != "since":
                query[self.options["since_param"]] = since_value
            query.update(params)
        response = self.client.get(url or self.options["list_path"], params=query or None)
        body = self._json(response)
        records = (
            body if not self.options["records_path"] else dig(body, self.options["records_path"])
        )
        if not isinstance(records, list):
            raise MalformedPage(
                f"expected a list at {self.options['records_path'] or 'the top level'}, "
                f"got {type(records).__name__}"
            )
        if not all(isinstance(item, dict) for item in records):
            raise MalformedPage("every record in the list must be a JSON object")
        next_cursor = self.paginator.next_cursor(cursor, response, body, records)
        return Page(
            records=self.paginator.filter_records(cursor, records),
            next_cursor=next_cursor,
            rate_limit=RateLimitInfo.from_headers(response.headers),
            info={"status": response.status_code},
        )

    def external_id(self, record: dict) -> str | None:
        value = dig(record, self.options["id_field"])
        if value is None or isinstance(value, dict | list) or value == "":
            return None
        return str(value)

    def updated_at(self, record: dict) -> str | None:
        field = self.options["updated_at_field"]
        if not field:
            return None
        value = dig(record, field)
        return None if value is None else str(value)

    def is_deleted(self, record: dict) -> bool:
        field = self.options["deleted_field"]
        return bool(field and dig(record, field))

    @property
    def identity_fields(self) -> tuple[str, ...]:
        return tuple(f for f in (self.options["id_field"], self.options["updated_at_field"]) if f)

    def remote_version(self, record: dict) -> str | None:
        field = self.options["version_field"]
        value = dig(record, field) if field else None
        return None if value is None or isinstance(value, dict | list) else str(value)

    def modified_by_self(self, record: dict) -> bool:
        field, me = self.options["modified_by_field"], self.options["self_user"]
        return bool(field and me) and str(dig(record, field)) == me

    # -- push ----------------------------------------------------------------------------

    @property
    def supports_idempotency_keys(self) -> bool:
        return bool(self.options["idempotency_header"])

    @property
    def supports_conditional_writes(self) -> bool:
        return bool(self.options["conditional_writes"])

    @property
    def can_find_created(self) -> bool:
        return bool(self.options["marker_field"])

    @property
    def read_only_fields(self) -> tuple[str, ...]:
        fields = [
            self.options["id_field"],
            self.options["updated_at_field"],
            self.options["deleted_field"],
            *self.options["read_only_fields"],
        ]
        return tuple(f for f in fields if f)

    def _item_path(self, external_id: str) -> str:
        from urllib.parse import quote

        return self.options["item_path"].replace("{id}", quote(str(external_id), safe=""))

    def _write_headers(self, idempotency_key: str, if_version: str | None) -> dict[str, str]:
        headers = {}
        if self.options["idempotency_header"]:
            headers[self.options["idempotency_header"]] = idempotency_key
        if if_version and self.options["conditional_writes"]:
            # Versions read from a body are bare; ETags from a header are already quoted.
            headers["If-Match"] = (
                if_version if if_version.startswith(('"', "W/")) else (f'"{if_version}"')
            )
        return headers

    def _writable(self, payload: dict) -> dict:
        read_only = set(self.read_only_fields)
        return {k: v for k, v in payload.items() if k not in read_only}

    def _send_write(self, method: str, path: str, *, operation: str, body=None, headers=None):
        self.last_request = {
            "method": method,
            "url": self.client.url(path),
            "headers": {k: v for k, v in (headers or {}).items()},
            "body": body,
        }
        try:
            return self.client.request(
                method, path, operation=operation, json=body, headers=headers or None
            )
        except HttpError as exc:
            if exc.status == 412:
                raise RemoteChanged(
                    f"{method} {path}: the remote record changed since version "
                    f"{(headers or {}).get('If-Match')}"
                ) from None
            raise

    def _result(self, response, *, fallback_id: str | None = None) -> PushResult:
        record = None
        if response.content:
            body = self._json(response)
            record = (
                body if not self.options["record_path"] else dig(body, self.options["record_path"])
            )
            if not isinstance(record, dict) or not record:
                record = None
        external_id = (self.external_id(record) if record else None) or fallback_id
        if not external_id:
            raise MalformedPage(
                f"the provider's answer (HTTP {response.status_code}) names no record id"
            )
        version = None
        if self.options["version_header"]:
            version = _bare_etag(response.headers.get(self.options["version_header"]))
        if version is None and record is not None:
            version = self.remote_version(record)
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return PushResult(
            external_id=external_id,
            record=record,
            version=version,
            replayed=replayed,
            status=response.status_code,
        )

    def get_one(self, external_id: str) -> PushResult | None:
        try:
            response = self.client.get(self._item_path(external_id))
        except HttpError as exc:
            if exc.status in (404, 410):
                return None
            raise
        result = self._result(response, fallback_id=external_id)
        if result.record is None or self.is_deleted(result.record):
            return None  # a tombstone is not a record to write to
        return result

    def create(self, payload: dict, *, idempotency_key: str) -> PushResult:
        body = self._writable(payload)
        if self.options["marker_field"]:
            body[self.options["marker_field"]] = idempotency_key
        response = self._send_write(
            "POST",
            self.options["create_path"],
            operation="create",
            body=body,
            headers=self._write_headers(idempotency_key, None),
        )
        return self._result(response)

    def update(self, external_id, payload, *, idempotency_key, if_version=None) -> PushResult:
        response = self._send_write(
            self.options["update_method"],
            self._item_path(external_id),
            operation="update",
            body=self._writable(payload),
            headers=self._write_headers(idempotency_key, if_version),
        )
        return self._result(response, fallback_id=external_id)

    def delete(self, external_id, *, idempotency_key, if_version=None) -> PushResult:
        response = self._send_write(
            "DELETE",
            self._item_path(external_id),
            operation="delete",
            headers=self._write_headers(idempotency_key, if_version),
        )
        result = self._result(response, fallback_id=external_id)
        result.record = None  # whatever a delete answers, the record is gone
        return result

    @property
    def batch_support(self) -> BatchSupport | None:
        if not self.options["batch_path"]:
            return None
        return BatchSupport(
            operations=frozenset(self.options["batch_operations"]),
            max_size=self.options["batch_max_size"],
            # Keys are kept per item only where the provider keeps idempotency keys.
            idempotent_creates=bool(self.options["idempotency_header"]),
        )

    def push_many(self, operation, items):
        return rest_batch.push_many(self, operation, items)

    def find_created(self, idempotency_key: str, *, payload=None) -> dict | None:
        field = self.options["marker_field"]
        if not field:
            return None
        response = self.client.get(
            self.options["list_path"], params={**self.options["params"], field: idempotency_key}
        )
        body = self._json(response)
        records = body if isinstance(body, list) else dig(body, self.options["records_path"])
        if not isinstance(records, list):
            raise MalformedPage("the marker lookup did not answer a list")
        matches = [
            r for r in records if isinstance(r, dict) and str(dig(r, field)) == idempotency_key
        ]
        return matches[0] if matches else None

    # -- helpers -------------------------------------------------------------------------

    def _json(self, response):
        return json_body(response, source="the provider")
