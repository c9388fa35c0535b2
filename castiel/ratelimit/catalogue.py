"""Catalogue defaults: each provider's published limit, as the integration-level policy.

Keyed by provider slug. Kept in this one small module on purpose: when provider-specific data
moves into the provider folders, this table moves with it (each entry becomes that provider's
``ProviderInfo.rate_limit``) and :func:`integration_limit_for` is the only reader to change.

Every figure is the provider's documented limit for the most common plan; where plans differ
we take the lower one (an operator raises it with an override, never has to lower it after a
ban). Windows are in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueLimit:
    limit: int
    window: float
    source: str  # where the figure comes from, shown to operators


CATALOGUE: dict[str, CatalogueLimit] = {
    # 5,000 requests per hour per user/installation token.
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    "github": CatalogueLimit(5000, 3600, "GitHub: 5,000 requests/hour per token"),
    # A rolling 24-hour org allocation; 100,000 is the Enterprise Edition base allocation
    # (it grows with licences, so raise it per integration with an override).
    # https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm
    "salesforce": CatalogueLimit(100_000, 86_400, "Salesforce: rolling 24 h org allocation"),
    # 100 requests per 10 seconds (Free/Starter; Professional/Enterprise allow 190).
    # https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
    "hubspot": CatalogueLimit(100, 10, "HubSpot: 100 requests/10 s (190 on higher tiers)"),
    # 100 operations per second in live mode (25 in test mode: see STRIPE_TEST_MODE).
    # https://docs.stripe.com/rate-limits
    "stripe": CatalogueLimit(100, 1, "Stripe: 100 operations/s live"),
    # Leaky bucket of 40 requests draining at 2/s (standard plan). 40 per 20 s never overflows
    # the bucket: a full burst of 40 fills it, and the next 40 only start as the first ones
    # have drained.
    # https://shopify.dev/docs/api/admin-rest/usage/rate-limits
    "shopify": CatalogueLimit(40, 20, "Shopify: leaky bucket 40, 2 requests/s"),
    # Web API Tier 3 (50+ per minute), the tier of most read methods.
    # https://api.slack.com/apis/rate-limits
    "slack": CatalogueLimit(50, 60, "Slack: Web API tier 3, 50 requests/min"),
    # No published limit: a polite default for an arbitrary REST API.
    "generic_rest": CatalogueLimit(300, 60, "Generic REST: 300 requests/min default"),
    # The built-in sandbox runs locally; generous so demos and tests are not throttled.
    "sandbox": CatalogueLimit(100, 1, "Sandbox: 100 requests/s"),
}

# Stripe's test mode allows 25 operations per second.
STRIPE_TEST_MODE = CatalogueLimit(25, 1, "Stripe: 25 operations/s in test mode")

# Any provider without an entry.
FALLBACK = CatalogueLimit(60, 60, "Default: 60 requests/min (provider not in the catalogue)")


def integration_limit_for(provider: str, config: dict | None = None) -> CatalogueLimit:
    """The catalogue limit for an integration of ``provider`` with ``config``."""
    config = config or {}
    if provider == "stripe" and (config.get("mode") == "test" or config.get("livemode") is False):
        return STRIPE_TEST_MODE
    return CATALOGUE.get(provider, FALLBACK)
