"""Stripe: pull customers, create / update / delete them with idempotency keys.

Config (``Integration.config``): ``api_version`` (sent as ``Stripe-Version`` so payloads
keep one shape), ``mode`` (``test`` selects the 25/s limit), ``page_size`` (1-100),
``created_gte`` (only customers created at or after this ISO time or epoch: Stripe's
``created[gte]`` filter).

* **Pull.** ``GET /v1/customers?limit&starting_after`` — newest first. Stripe has no
  "updated since" filter for customers, so every run lists them all (unchanged ones are no
  writes: same content hash) and changes in between arrive as ``customer.*`` webhooks;
  ``updated_at`` is None, so the sync engine keeps no watermark for Stripe. A server that
  rejects ``created[gte]`` (localstripe only understands ``limit``/``starting_after`` on
  this list) is handled by filtering the pages here instead, and the page says so
  (``info["created_filter"] == "local"``).
* **Push.** Form-encoded (``metadata[castiel_id]=…``), every POST and DELETE with
  ``Idempotency-Key`` = the change's key: a retry replays Stripe's stored answer
  (``Idempotent-Replayed: true``). Creates also write the key to ``metadata.castiel_id``,
  so a create retried after Stripe forgot the key (24 h), or against a server without
  idempotency keys, finds the customer it made among the newest 100 (and, on Stripe, by
  search) instead of creating another.
* **Errors** ``{"error": {"type", "code", "message", "param"}}``. ``Stripe-Should-Retry``
  decides retryability when present; a 429 with ``Stripe-Rate-Limited-Reason`` is a rate
  limit (Stripe sends no ``Retry-After``: back off), a 429 ``lock_timeout`` is an object lock
  (retry soon).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from castiel.observability.logging import get_logger
from integrations.adapters import errors as E
from integrations.adapters.base import MalformedPage, Page, PushResult
from integrations.adapters.errors import provider_error
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.provider import ProviderAdapter

from .form import encode_form

log = get_logger(__name__)

MARKER_FIELD = "castiel_id"
MARKER_SCAN = 100
# Customer fields a create/update may send (the rest of a customer object is Stripe's).
WRITABLE = {
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
}
CREATE_ONLY = {"payment_method", "source", "tax_id_data", "test_clock"}


def validate_config(config: dict) -> dict[str, str]:
    errors = {}
    size = config.get("page_size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 100
    ):
        errors["page_size"] = "page_size must be an integer from 1 to 100."
    mode = config.get("mode")
    if mode not in (None, "", "live", "test"):
        errors["mode"] = "mode is 'live' or 'test'."
    created = config.get("created_gte")
    if created not in (None, "") and parse_timestamp(created) is None:
        errors["created_gte"] = "created_gte is an ISO 8601 time or a Unix time."
    return errors


class StripeAdapter(ProviderAdapter):
    push_entities = ("customers",)
    supports_idempotency_keys = True

    def default_headers(self):
        headers = {"Accept": "application/json"}
        if self.config.get("api_version"):
            headers["Stripe-Version"] = str(self.config["api_version"])
        return headers

    @property
    def created_gte(self) -> int | None:
        moment = parse_timestamp(self.config.get("created_gte"))
        return int(moment.timestamp()) if moment else None

    # -- pull ----------------------------------------------------------------------------

    def validate_cursor(self, cursor):
        self.check_cursor_keys(cursor, starting_after=str, created_filter=str)

    def fetch_page(self, cursor, *, since=None) -> Page:
        self.require_pull()
        self.validate_cursor(cursor)
        params: dict[str, Any] = {"limit": int(self.config.get("page_size") or 100)}
        if cursor and cursor.get("starting_after"):
            params["starting_after"] = cursor["starting_after"]
        created = self.created_gte
        where = (cursor or {}).get("created_filter") or "server"
        if created is not None and where == "server":
            try:
                response = self.request(
                    "GET", "/v1/customers", params={**params, "created[gte]": created}
                )
            except E.ProviderError as exc:
                if exc.status != 400 or "created" not in str(exc):
                    raise
                # The server does not know the filter (localstripe): filter here instead.
                log.warning("stripe.created_filter_unsupported", integration=self.integration.pk)
                where = "local"
                response = self.request("GET", "/v1/customers", params=params)
        else:
            response = self.request("GET", "/v1/customers", params=params)
        body = self.json(response)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise MalformedPage("Stripe answered without a list 'data'")
        records = [r for r in body["data"] if isinstance(r, dict)]
        nxt = None
        if body.get("has_more") and records:
            nxt = {"starting_after": str(records[-1]["id"])}
            if created is not None:
                nxt["created_filter"] = where
        if created is not None and where == "local":
            if records and all((r.get("created") or 0) < created for r in records):
                # Newest first: once a whole page is older, everything after it is too.
                nxt = None
            records = [r for r in records if (r.get("created") or 0) >= created]
        return Page(
            records=records,
            next_cursor=nxt,
            rate_limit=self.rate_limit_info(response),
            info={"status": response.status_code, "created_filter": where},
        )

    def external_id(self, record):
        value = record.get("id")
        return str(value) if value else None

    def is_deleted(self, record):
        return record.get("deleted") is True

    @property
    def identity_fields(self):
        return ("id", "object", "created", "livemode")

    # -- push ----------------------------------------------------------------------------

    can_find_created = True

    @property
    def read_only_fields(self):
        return ("id", "object", "created", "livemode", "delinquent", "deleted")

    def writable(self, payload: dict, *, creating: bool) -> dict:
        allowed = WRITABLE | (CREATE_ONLY if creating else set())
        body = {k: v for k, v in payload.items() if k in allowed}
        if creating:
            # Nothing to unset on a new customer; Stripe wants absent, not empty, values.
            body = {k: v for k, v in body.items() if v is not None}
        return body

    def _item(self, external_id: str) -> str:
        return f"/v1/customers/{quote(str(external_id), safe='')}"

    def _write(self, method, path, *, operation, key, body=None):
        headers = {"Idempotency-Key": key}
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["data"] = encode_form(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = self.request(method, path, operation=operation, record=True, **kwargs)
        if self.last_request is not None:
            self.last_request["body"] = body  # readable in dead letters, not form-encoded
        return response

    def _result(self, response, fallback_id=None) -> PushResult:
        record = self.json(response)
        return PushResult(
            external_id=str(record.get("id") or fallback_id),
            record=None if record.get("deleted") else record,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            status=response.status_code,
        )

    def get_one(self, external_id):
        self.require_push("read")
        try:
            response = self.request("GET", self._item(external_id))
        except E.ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        result = self._result(response, external_id)
        return None if result.record is None else result

    def create(self, payload, *, idempotency_key):
        self.require_push("create")
        body = self.writable(payload, creating=True)
        metadata = dict(body.get("metadata") or {})
        metadata[MARKER_FIELD] = idempotency_key
        body["metadata"] = metadata
        response = self._write(
            "POST", "/v1/customers", operation="create", key=idempotency_key, body=body
        )
        return self._result(response)

    def update(self, external_id, payload, *, idempotency_key, if_version=None):
        self.require_push("update")
        response = self._write(
            "POST",
            self._item(external_id),
            operation="update",
            key=idempotency_key,
            body=self.writable(payload, creating=False),
        )
        return self._result(response, external_id)

    def delete(self, external_id, *, idempotency_key, if_version=None):
        self.require_push("delete")
        response = self._write(
            "DELETE", self._item(external_id), operation="delete", key=idempotency_key
        )
        result = self._result(response, external_id)
        result.record = None
        return result

    def find_created(self, idempotency_key, *, payload=None):
        """The customer an earlier attempt of this create made (``metadata.castiel_id``)."""
        response = self.request("GET", "/v1/customers", params={"limit": MARKER_SCAN})
        for customer in (self.json(response) or {}).get("data") or []:
            if (customer.get("metadata") or {}).get(MARKER_FIELD) == idempotency_key:
                return customer
        # Older than the newest page: Stripe's search finds it (its index lags a minute,
        # which is why the list comes first). Servers without search answer 404.
        try:
            response = self.request(
                "GET",
                "/v1/customers/search",
                params={"query": f"metadata['{MARKER_FIELD}']:'{idempotency_key}'"},
            )
        except E.ProviderError as exc:
            if exc.status in (400, 404, 405):
                return None
            raise
        found = (self.body_of(response) or {}).get("data") or []
        return found[0] if found and isinstance(found[0], dict) else None

    # -- errors --------------------------------------------------------------------------

    def error_for(self, response, *, what):
        status = response.status_code
        if status < 400:
            return None
        body = self.body_of(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        kind = str(error.get("type") or "")
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        details = {k: error[k] for k in ("type", "code", "param", "doc_url") if error.get(k)}
        should_retry = response.headers.get("Stripe-Should-Retry")
        retryable = None
        if should_retry is not None:
            retryable = should_retry.lower() == "true"
        limited_reason = response.headers.get("Stripe-Rate-Limited-Reason")
        if status == 429 and (limited_reason or code == "rate_limit") and code != "lock_timeout":
            return provider_error(
                response,
                what=what,
                provider_code=code or "rate_limit",
                message=message,
                rate_limited=True,
                details={**details, "limited_reason": limited_reason or ""},
            )
        reason = None
        if status == 429:  # lock_timeout: another request holds the object; not a rate limit
            reason, retryable = E.CONFLICT, True if retryable is None else retryable
        elif kind == "idempotency_error":
            reason = E.CONFLICT
        elif status == 400 and error.get("param"):
            reason = E.VALIDATION_FAILED
        elif kind == "card_error":
            reason = E.VALIDATION_FAILED
        elif code == "resource_missing":
            reason = E.NOT_FOUND
        return provider_error(
            response,
            what=what,
            reason=reason,
            provider_code=code or kind,
            message=message,
            details=details,
            retryable=retryable,
            rate_limited=False,
        )

    def connection_details(self, response):
        body = self.json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise MalformedPage("Stripe answered without a customer list")
        livemode = data[0].get("livemode") if data else None
        return {"livemode": livemode, "api_version": self.config.get("api_version")}
