"""HubSpot (CRM API v3): contacts and companies.

Facts an adapter relies on (sources in fixtures/SOURCES.md):

- Paging: ``GET /crm/v3/objects/{type}?limit=<=100&after=<cursor>&properties=...``; the next
  cursor is ``paging.next.after`` (opaque); no ``paging`` on the last page.
- Incremental: ``POST /crm/v3/objects/{type}/search`` with a filter on ``lastmodifieddate``
  (contacts) or ``hs_lastmodifieddate`` (companies) ``GTE`` epoch milliseconds, sorted on
  the same property. Answers ``{"total", "results", "paging"}`` with an offset cursor;
  at most 200 per page and 10,000 results per query (re-anchor the filter on the last
  timestamp to go further). Search responses carry no ``X-HubSpot-RateLimit-*`` headers.
- Writes: create ``POST`` -> 201 object; update ``PATCH /{id}`` -> 200 object; archive
  ``DELETE /{id}`` -> 204. Creating a contact whose email exists -> 409 ``CONFLICT``
  "Contact already exists. Existing ID: <id>" (usable as an idempotent create).
- Limits: ``X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds`` (the 10 s burst
  window) and, for private-app tokens, ``-Daily/-Daily-Remaining``. 429 bodies name the
  policy: ``TEN_SECONDLY_ROLLING``, ``SECONDLY`` (search) or ``DAILY`` (resets at midnight
  in the account's time zone).
- Errors: ``{"status": "error", "message", "correlationId", "category"[, "errors",
  "context", "links"]}``; categories include INVALID_AUTHENTICATION, EXPIRED_AUTHENTICATION,
  MISSING_SCOPES (``errors[].context.requiredGranularScopes``), VALIDATION_ERROR, CONFLICT.
  The v1 token endpoint answers a dead refresh token with 400 ``BAD_REFRESH_TOKEN``
  (not RFC 6749's invalid_grant).

The adapter is ``adapter.py``; ``webhooks.py`` holds the event table and parses the v3
webhook batches (the ``hubspot`` parser); ``limits.py`` reads the ``X-HubSpot-RateLimit-*``
headers.
"""

from integrations.providers.base import OAuthSpec, ProviderInfo

from .limits import read as read_limits
from .webhooks import EVENTS

PROVIDER = ProviderInfo(
    slug="hubspot",
    name="HubSpot",
    # Private-app / static app tokens are bearer tokens; public apps use OAuth. HubSpot API
    # keys were retired in 2022, so api_key is deliberately not listed.
    auth_types=("oauth2_authorization_code", "bearer_token"),
    api_base="https://api.hubapi.com",
    entity_types=("contacts", "companies"),
    display_fields={
        "contacts": ("properties.firstname properties.lastname", "properties.email"),
        "companies": ("properties.name", "properties.domain"),
    },
    docs_url="https://developers.hubspot.com/docs/api/crm/understanding-the-crm",
    oauth=OAuthSpec(
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",  # noqa: S106  (an endpoint URL, not a password)
        scopes=(
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
            "crm.objects.companies.read",
            "crm.objects.companies.write",
        ),
        # HubSpot's OAuth docs do not document PKCE for these endpoints.
        pkce=False,
        scope_delimiter=" ",
        # DELETE, with the refresh token in the path.
        revoke_url="https://api.hubapi.com/oauth/v1/refresh-tokens/{refresh_token}",
    ),
    rate_limit={
        "limit": 100,
        "window": 10,
        "scope": "app_installation",
        "source": "HubSpot: 100 requests per 10 seconds per app per account (Free/Starter; "
        "190 on Professional/Enterprise, 110 for public OAuth apps)",
        "additional": (
            {
                "limit": 250_000,
                "window": 86_400,
                "scope": "account",
                "source": "Daily: 250,000 requests per account for private apps on "
                "Free/Starter (650,000 Professional, 1,000,000 Enterprise); resets at "
                "midnight in the account's time zone; not applied to OAuth apps",
            },
            {
                "limit": 4,
                "window": 1,
                "scope": "credential",
                "source": "CRM search: 4 requests per second per token, 200 records per "
                "page, 10,000 results per query",
            },
        ),
        "headers": (
            "X-HubSpot-RateLimit-Max",
            "X-HubSpot-RateLimit-Remaining",
            "X-HubSpot-RateLimit-Interval-Milliseconds",
            "X-HubSpot-RateLimit-Daily",
            "X-HubSpot-RateLimit-Daily-Remaining",
            "X-HubSpot-RateLimit-Secondly",
            "X-HubSpot-RateLimit-Secondly-Remaining",
        ),
    },
    limit_headers=read_limits,
    # Scheme slug as implemented by webhooks/schemes/hubspot.py (X-HubSpot-Signature-v3).
    webhook_scheme="hubspot",
    # Keyed by each batch item's subscriptionType. Events carry ids, not records: fetch.
    webhooks=EVENTS,
    # Lists one contact: proves the token and the contacts read scope in one cheap call.
    test_connection="GET /crm/v3/objects/contacts?limit=1",
    # Relative to this package, so a copied folder uses its own copy of the adapter.
    adapter=f"{__name__}.adapter.HubSpotAdapter",
)
