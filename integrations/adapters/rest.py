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

Authentication comes from the integration's credential through ``client_for`` — never from
this config, which is visible in the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from integrations.adapters.base import (
    Adapter,
    AdapterConfigError,
    InvalidCursor,
    MalformedPage,
    Page,
    RateLimitInfo,
)
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.pagination import STYLES, dig, paginator_for

OPTION_KEYS = {
    "base_url",
    "oauth",  # OAuth2 client settings for the credential (credentials/oauth.py)
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
}
SINCE_FORMATS = ("iso", "epoch", "epoch_ms")
EXCERPT = 120


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
    for key in ("list_path", "records_path", "id_field", "updated_at_field", "since_param"):
        if not isinstance(options.get(key), str):
            errors[key] = f"{key} must be a string."
    if not options.get("id_field"):
        errors["id_field"] = "id_field must not be empty."
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

    # -- helpers -------------------------------------------------------------------------

    def _json(self, response):
        try:
            return response.json()
        except ValueError:
            content_type = response.headers.get("content-type", "unknown")
            excerpt = response.text[:EXCERPT].replace("\n", " ")
            raise MalformedPage(
                f"provider returned non-JSON (HTTP {response.status_code}, {content_type}): "
                f"{excerpt!r}"
            ) from None
