"""The base of every catalogue provider's adapter (GitHub, Salesforce, HubSpot, Stripe, Slack).

A provider adapter is the Sentry ``IntegrationInstallation`` idea: the stateless catalogue
entry (``integration.provider_info``) plus one integration's config, talking to the provider
through the integration's :class:`~castiel.http.OutboundClient` (credential, rate-limit gate,
timeouts, SSRF guard — all from ``integrations.connections.client_for``). What this base adds:

* the client points at the catalogue's API base for this integration
  (``ProviderInfo.api_base_for``: Salesforce's instance URL, GitHub Enterprise's host);
* :meth:`request` sends one call and turns any failure into the provider's own terms with
  :meth:`error_for` (override per provider; see :mod:`integrations.adapters.errors`);
* :meth:`rate_limit_info` reads the provider's limit headers with the provider's own reader
  (``ProviderInfo.limit_headers`` over ``castiel.http.limit_headers``), the very reading the
  rate limiter does, so adapters and the limiter agree on every dialect;
* :meth:`check_connection` makes the catalogue's ``test_connection`` call and says what it
  learnt (override :meth:`connection_details` to read more from the answer).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from castiel.http import limit_headers
from castiel.http.errors import OutboundError, classify
from integrations.adapters.base import (
    Adapter,
    AdapterConfigError,
    InvalidCursor,
    PushNotSupported,
    RateLimitInfo,
    json_body,
)


class ProviderAdapter(Adapter):
    #: entity types this adapter can pull (defaults to the catalogue's entity types)
    pull_entities: tuple[str, ...] | None = None
    #: entity types this adapter can write
    push_entities: tuple[str, ...] = ()

    def __init__(self, integration, entity_type: str, *, client=None):
        super().__init__(integration, entity_type, client=client)
        self.provider = integration.provider_info
        # Catalogue defaults filled in (api_version, login_url …); the raw config is what the
        # user typed and what validation reports on.
        self.config = self.provider.config_with_defaults(integration.config or {})
        self.last_request: dict | None = None

    # -- configuration -------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        try:
            return self.provider.api_base_for(self.integration.config or {})
        except (KeyError, IndexError, ValueError) as exc:
            raise AdapterConfigError(
                f"{self.provider.name}: the API address needs config {exc} "
                f"(catalogue api_base {self.provider.api_base!r})"
            ) from None

    @property
    def origin(self) -> str:
        parts = urlsplit(self.api_base)
        return f"{parts.scheme}://{parts.netloc}"

    def default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @property
    def client(self):
        if self._client is None:
            from integrations.connections import client_for

            self._client = client_for(
                self.integration, base_url=self.api_base, headers=self.default_headers()
            )
        return self._client

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(self.pull_entities or self.provider.entity_types)

    def validate(self) -> None:
        errors = self.provider.validate_config(self.integration.config or {})
        if errors:
            raise AdapterConfigError(
                "; ".join(f"{key}: {message}" for key, message in sorted(errors.items()))
            )
        known = set(self.entity_names) | set(self.push_entities)
        if self.entity_type not in known:
            raise AdapterConfigError(
                f"{self.provider.name} has no entity type {self.entity_type!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        self.validate_entity()

    def validate_entity(self) -> None:
        """Entity-specific configuration checks (e.g. GitHub issues need a repository)."""

    def require_pull(self) -> None:
        if self.entity_type not in self.entity_names:
            raise AdapterConfigError(
                f"{self.provider.name} {self.entity_type} can be written but not pulled"
            )

    def require_push(self, operation: str) -> None:
        if self.entity_type not in self.push_entities:
            raise PushNotSupported(
                f"{self.provider.name} {self.entity_type}: {operation} is not supported "
                f"(writable: {', '.join(self.push_entities) or 'nothing'})"
            )

    # -- HTTP ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        operation: str = "fetch",
        record: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """One call; a failure raises the provider's error (:meth:`error_for`).

        ``record``: remember a summary of the request for dead letters (writes)."""
        if record:
            self.last_request = {
                "method": method,
                "url": self.client.url(path_or_url).split("?", 1)[0],
                "headers": dict(kwargs.get("headers") or {}),
                "body": kwargs.get("json", kwargs.get("data")),
            }
        response = self.client.request(
            method, path_or_url, operation=operation, raise_for_status=False, **kwargs
        )
        error = self.error_for(response, what=f"{self.provider.name} {method} {_path(response)}")
        if error is not None:
            raise error
        return response

    def error_for(self, response: requests.Response, *, what: str) -> OutboundError | None:
        """The error ``response`` stands for, or None. Providers override this to read their
        error bodies (see :mod:`integrations.adapters.errors`)."""
        return classify(response, what=what)

    def json(self, response: requests.Response) -> Any:
        return json_body(response, source=self.provider.name)

    @staticmethod
    def body_of(response: requests.Response) -> Any:
        """The JSON body, or None (error bodies are read leniently)."""
        try:
            return response.json()
        except ValueError:
            return None

    def rate_limit_info(self, response: requests.Response) -> RateLimitInfo | None:
        """The provider's limit feedback, read as the rate limiter reads it."""
        return RateLimitInfo.from_signal(
            limit_headers.parse_response(response, reader=self.provider.limit_headers)
        )

    def check_cursor_keys(self, value, /, **types) -> None:
        """``value`` (a cursor) is None or a dict whose listed keys have the given types (or
        are None)."""
        if value is None:
            return
        cursor = value
        if not isinstance(cursor, dict):
            raise InvalidCursor(f"cursor must be an object, not {type(cursor).__name__}")
        for key, kind in types.items():
            value = cursor.get(key)
            if value is not None and not isinstance(value, kind):
                raise InvalidCursor(f"cursor {key!r} must be {kind}, not {value!r}")

    # -- test connection -----------------------------------------------------------------

    def check_connection(self) -> dict[str, Any]:
        """Make the catalogue's one cheap authenticated call; raise on failure, else return
        what it says about the connection (account, user, scopes)."""
        spec = self.provider.test_connection
        if not spec:
            raise AdapterConfigError(f"{self.provider.name} declares no test-connection call")
        method, _, path = spec.partition(" ")
        try:
            path = path.format(**self.config)
        except KeyError as exc:
            raise AdapterConfigError(f"the test-connection call needs config {exc}") from None
        response = self.request(method, path)
        return self.connection_details(response)

    def connection_details(self, response: requests.Response) -> dict[str, Any]:
        return {}

    @property
    def expected_scopes(self) -> tuple[str, ...]:
        """The scopes the catalogue asks for (the test-connection report names missing ones)."""
        oauth = self.provider.oauth
        return tuple(oauth.scopes) if oauth else ()


def _path(response: requests.Response) -> str:
    """The request path without its query (which can carry keys) for messages."""
    url = getattr(response.request, "url", None) or response.url or ""
    return urlsplit(url).path or "/"


def split_scopes(value: str | None) -> list[str]:
    """``"repo, read:org"`` / ``"a,b"`` / ``"a b"`` → a list."""
    if not value:
        return []
    return [s for s in value.replace(",", " ").split() if s]


def missing_scopes(granted: list[str], expected) -> list[str]:
    have = set(granted)
    return [scope for scope in expected if scope not in have]


def first_text(*values) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
