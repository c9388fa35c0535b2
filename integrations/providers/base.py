"""The stateless description of a provider (Sentry's IntegrationProvider idea).

A provider folder ``integrations/providers/<slug>/`` exposes ``PROVIDER`` in its
``__init__.py``. Connected instances are :class:`integrations.models.Integration` rows.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from integrations.jsonpath import get_path

if TYPE_CHECKING:
    from castiel.http.limit_headers import LimitReader
    from integrations.webhook_events.table import EventTable

# The ways a provider's API can authenticate a request. A provider lists the ones it supports;
# the credentials app implements them. Kept here (not in credentials/) because the catalogue is
# the stateless description every other app reads.
AUTH_TYPES = (
    "oauth2_authorization_code",
    "oauth2_client_credentials",
    "oauth2_jwt_bearer",
    "api_key",
    "basic",
    "bearer_token",
    "oauth1",
    "hmac_signing_secret",
    "mtls_certificate",
)

# What a provider counts a limit against. The rate limiter keys its buckets per integration;
# the scope tells an operator when several integrations share one provider budget (two
# Salesforce integrations on one org share its 24-hour allocation, two GitHub integrations
# with different tokens do not).
RATE_LIMIT_SCOPES = (
    "credential",  # per token/user (GitHub)
    "account",  # per provider account (Stripe account, HubSpot account)
    "org",  # per organisation, shared by every app and user in it (Salesforce)
    "app_installation",  # per app per installed workspace/account (HubSpot OAuth apps)
    "method",  # per API method per installation (Slack tiers)
    "endpoint",  # per endpoint per credential (GitHub secondary limits)
    "ip",  # per client IP address (unauthenticated requests)
)


class RateLimitWindow(TypedDict):
    """``limit`` requests per sliding ``window`` seconds, counted per ``scope``."""

    limit: int
    window: float
    scope: str
    # The provider's own words for the figure, shown to operators next to the number.
    source: str


class RateLimitPolicy(RateLimitWindow, total=False):
    """A provider's default rate-limit policy as documented.

    The required keys are the primary limit the rate limiter enforces per integration (the
    same shape as ``ratelimit``'s catalogue entries: limit, window, source). The
    optional keys describe what else the provider enforces so adapters and operators can
    read it from one place:

    - ``additional``: further published limits that also apply (daily caps, secondary
      limits, per-endpoint limits);
    - ``headers``: response headers that report usage or ask the client to wait;
    - ``test_mode``: the limit when the credential is a test/sandbox one (Stripe).

    A TypedDict rather than a dataclass so ``ProviderInfo.rate_limit`` stays a plain dict
    (its original type): readers that did ``rate_limit.get("limit")`` keep working.
    """

    additional: tuple[RateLimitWindow, ...]
    headers: tuple[str, ...]
    test_mode: RateLimitWindow


# Runtime check of RateLimitWindow (TypedDicts are not checked at runtime).
_WINDOW_TYPES: dict[str, tuple[type, ...]] = {
    "limit": (int,),
    "window": (int, float),
    "scope": (str,),
    "source": (str,),
}


def _window_problems(window: Any, where: str, *, allow_extra: bool = False) -> list[str]:
    if not isinstance(window, dict):
        return [f"{where} must be a mapping"]
    problems = []
    for key, types in _WINDOW_TYPES.items():
        value = window.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            problems.append(f"{where}.{key} is missing or not {types[0].__name__}")
    extra = set(window) - set(_WINDOW_TYPES)
    if extra and not allow_extra:
        problems.append(f"{where} has unknown keys {sorted(extra)}")
    if not problems:
        if window["limit"] < 1:
            problems.append(f"{where}.limit must be at least 1")
        if window["window"] <= 0:
            problems.append(f"{where}.window must be positive")
        if window["scope"] not in RATE_LIMIT_SCOPES:
            problems.append(f"{where}.scope {window['scope']!r} is not one of {RATE_LIMIT_SCOPES}")
        if not window["source"].strip():
            problems.append(f"{where}.source must say where the figure comes from")
    return problems


def rate_limit_problems(policy: Any) -> list[str]:
    """Why ``policy`` is not a valid :class:`RateLimitPolicy` (empty when it is, or is ``{}``).

    TypedDicts are not checked at runtime; the catalogue tests call this for every provider so
    all policies keep one shape.
    """
    if policy == {}:
        return []
    problems = _window_problems(policy, "rate_limit", allow_extra=True)
    if problems:
        return problems
    unknown = set(policy) - RateLimitPolicy.__required_keys__ - RateLimitPolicy.__optional_keys__
    if unknown:
        problems.append(f"rate_limit has unknown keys {sorted(unknown)}")
    for index, window in enumerate(policy.get("additional", ())):
        problems += _window_problems(window, f"rate_limit.additional[{index}]")
    if "test_mode" in policy:
        problems += _window_problems(policy["test_mode"], "rate_limit.test_mode")
    headers = policy.get("headers", ())
    if not isinstance(headers, tuple) or not all(isinstance(h, str) and h for h in headers):
        problems.append("rate_limit.headers must be a tuple of header names")
    return problems


@dataclass(frozen=True)
class OAuthSpec:
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    scope_delimiter: str = " "
    revoke_url: str | None = None
    extra_authorize_params: dict[str, str] = field(default_factory=dict)


# Display fields tried, in this order, for an entity type that declares none: the first two
# present in a record show it.
FALLBACK_DISPLAY_FIELDS = (
    "name",
    "full_name",
    "first_name last_name",
    "title",
    "subject",
    "login",
    "email",
)


def display_field_problems(value: Any, where: str = "display_fields") -> list[str]:
    """Why ``value`` is not a display-fields mapping ({entity type: [paths …]})."""
    if not isinstance(value, dict):
        return [f"{where} must map entity types to lists of field paths"]
    problems = []
    for entity_type, entries in value.items():
        if (
            not isinstance(entries, list | tuple)
            or not entries
            or not all(isinstance(e, str) and e.strip() for e in entries)
        ):
            problems.append(f"{where}.{entity_type} must be a non-empty list of field paths")
    return problems


def display_values(entries: tuple[str, ...], data: dict) -> list[tuple[str, str]]:
    """(entry, text) for each display entry with a value in ``data`` (several paths of one
    entry joined by a space); without entries, the first two ``FALLBACK_DISPLAY_FIELDS``
    present."""

    def text(entry: str) -> str:
        parts = [get_path(data, path) for path in entry.split()]
        return " ".join(str(p) for p in parts if p not in (None, "", [], {})).strip()

    if entries:
        return [(entry, value) for entry in entries if (value := text(entry))]
    found = [(entry, value) for entry in FALLBACK_DISPLAY_FIELDS if (value := text(entry))]
    return found[:2]


def display_paths(entries) -> set[str]:
    """Every dotted path named by display entries (what a search looks in)."""
    return {path for entry in entries for path in entry.split()}


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    name: str
    auth_types: tuple[str, ...]
    api_base: str = ""
    entity_types: tuple[str, ...] = ()
    docs_url: str = ""
    oauth: OAuthSpec | None = None
    # Catalogue default rate-limit policy (see castiel rate limiter), e.g.
    # {"limit": 5000, "window": 3600, "scope": "credential", "source": "..."}; the shape is
    # RateLimitPolicy above (empty: no catalogue default).
    rate_limit: RateLimitPolicy | dict[str, Any] = field(default_factory=dict)
    webhook_scheme: str | None = None
    # Keys an Integration of this provider must have in its ``config``.
    required_config: tuple[str, ...] = ()
    # Dotted path of the adapter class (issue: adapter contract), resolved lazily.
    adapter: str | None = None
    # Dotted path of ``fn(token_response_fields) -> {config key: value}``: configuration the
    # provider returns with its tokens (Salesforce: the org's instance_url and the
    # integration user's id), written to the integration after a connect or a refresh.
    config_from_token: str | None = None
    # --- added with the provider catalogue (all optional; defaults keep older providers valid)
    # The provider's webhook event table (``integrations.webhook_events.EventTable``, kept in
    # the folder's ``webhooks.py`` with the parser it decorates): the catalogue's
    # ``webhook_events``, the default routes and the contract tests all come from it.
    webhooks: EventTable | None = None
    # Reads the provider's own rate-limit headers: ``fn(headers, now) -> [Quota]`` over
    # lower-cased headers (the folder's ``limits.py``); None: the generic families of
    # ``castiel.http.limit_headers`` (X-RateLimit-*, IETF RateLimit, Retry-After …).
    limit_headers: LimitReader | None = None
    # One cheap authenticated call that proves the credential works: "METHOD /path", the path
    # relative to the API base, ``{key}`` filled from the integration config (with
    # ``optional_config`` defaults).
    test_connection: str = ""
    # Config keys an integration may set, with the default used when it does not.
    optional_config: dict[str, str] = field(default_factory=dict)
    # What shows a record to a person, per entity type: dotted paths into the record's data,
    # the first entry its title. An entry of several paths separated by spaces is one value
    # (``"FirstName LastName"``). The admin's record list, the record page's title, admin
    # search and the records API's ``display`` and ``?q=`` use them; an integration's
    # ``config.display_fields`` (same shape) takes precedence — generic REST has only that.
    display_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def display_fields_for(self, entity_type: str, config: dict | None = None) -> tuple[str, ...]:
        """The display fields of ``entity_type`` for one integration (its ``config`` first,
        then the catalogue's; empty: ``FALLBACK_DISPLAY_FIELDS`` that are present apply)."""
        configured = ((config or {}).get("display_fields") or {}).get(entity_type)
        if isinstance(configured, list | tuple) and configured:
            return tuple(configured)
        return tuple(self.display_fields.get(entity_type, ()))

    @property
    def webhook_events(self) -> dict[str, str]:
        """The provider's webhook event names (as its parser reads them: GitHub's
        X-GitHub-Event header, Stripe's ``type``, Slack's ``event.type``, HubSpot's
        ``subscriptionType``) mapped to the entity type in ``entity_types`` they change —
        from the event table. Events not listed are stored but not acted on (Zulip's
        ALL_EVENT_TYPES idea)."""
        return self.webhooks.entity_types() if self.webhooks is not None else {}

    def api_base_for(self, config: dict) -> str:
        """The API base for one integration: its ``api_base`` config if set (GitHub Enterprise
        Server), else the catalogue's, with ``{key}`` placeholders filled from the config
        (Salesforce: ``{instance_url}/services/data/{api_version}``)."""
        merged = self.config_with_defaults(config)
        # Users paste instance URLs with or without a trailing slash; never produce "//".
        values = {k: v.rstrip("/") if isinstance(v, str) else v for k, v in merged.items()}
        return (values.get("api_base") or self.api_base).format(**values).rstrip("/")

    def config_with_defaults(self, config: dict) -> dict:
        """``config`` with ``optional_config`` defaults filled in for keys it does not set."""
        merged = dict(self.optional_config)
        merged.update({k: v for k, v in (config or {}).items() if v not in (None, "")})
        return merged

    def validate_config(self, config: dict) -> dict[str, str]:
        """Field errors for an integration config (empty when valid): the required keys, then
        whatever the adapter's module checks (its optional ``validate_config(config)``)."""
        errors = {}
        for key in self.required_config:
            value = config.get(key)
            if value in (None, ""):
                errors[key] = f"{self.name} integrations need '{key}' in their config."
        for key, message in self.adapter_config_errors(config).items():
            errors.setdefault(key, message)
        return errors

    def adapter_config_errors(self, config: dict) -> dict[str, str]:
        """Errors from ``validate_config(config)`` in the adapter's module, if it has one.

        Lives beside the adapter so a copied provider folder carries its own checks. An
        adapter module that cannot be imported is a broken provider: the import error
        propagates (loudly), as the registry does at start-up.
        """
        if not self.adapter:
            return {}
        module = importlib.import_module(self.adapter.rsplit(".", 1)[0])
        check = getattr(module, "validate_config", None)
        return dict(check(config or {})) if check is not None else {}
