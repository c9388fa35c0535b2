"""Catalogue defaults: each provider's published limit, as the integration-level policy.

The figures live with the provider, in ``integrations/providers/<slug>/`` (``ProviderInfo.
rate_limit``: limit, window, scope, source, and an optional ``test_mode`` policy such as
Stripe's 25/s). This module only turns them into the limiter's integration-level default.
Where plans differ the catalogue takes the lower figure: an operator raises it with an
override, never has to lower it after a ban.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueLimit:
    limit: int
    window: float
    source: str  # where the figure comes from, shown to operators


# Any provider whose catalogue entry has no rate-limit policy.
FALLBACK = CatalogueLimit(60, 60, "Default: 60 requests/min (no published limit in the catalogue)")


def _in_test_mode(config: dict) -> bool:
    return config.get("mode") == "test" or config.get("livemode") is False


def integration_limit_for(provider: str, config: dict | None = None) -> CatalogueLimit:
    """The catalogue limit for an integration of ``provider`` with ``config``."""
    from integrations.providers import registry

    config = config or {}
    try:
        policy = registry.get(provider).rate_limit or {}
    except registry.UnknownProvider:
        return FALLBACK
    if _in_test_mode(config) and policy.get("test_mode"):
        policy = policy["test_mode"]
    if not policy.get("limit") or not policy.get("window"):
        return FALLBACK
    return CatalogueLimit(int(policy["limit"]), float(policy["window"]), policy["source"])
