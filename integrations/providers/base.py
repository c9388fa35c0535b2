"""The stateless description of a provider (Sentry's IntegrationProvider idea).

A provider folder ``integrations/providers/<slug>/`` exposes ``PROVIDER`` in its
``__init__.py``. Connected instances are :class:`integrations.models.Integration` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OAuthSpec:
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    scope_delimiter: str = " "
    revoke_url: str | None = None
    extra_authorize_params: dict[str, str] = field(default_factory=dict)


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
    # {"limit": 5000, "window": 3600, "scope": "credential"}.
    rate_limit: dict[str, Any] = field(default_factory=dict)
    webhook_scheme: str | None = None
    # Keys an Integration of this provider must have in its ``config``.
    required_config: tuple[str, ...] = ()
    # Dotted path of the adapter class (issue: adapter contract), resolved lazily.
    adapter: str | None = None

    def validate_config(self, config: dict) -> dict[str, str]:
        """Field errors for an integration config (empty when valid)."""
        errors = {}
        for key in self.required_config:
            value = config.get(key)
            if value in (None, ""):
                errors[key] = f"{self.name} integrations need '{key}' in their config."
        return errors
