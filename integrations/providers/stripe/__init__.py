"""Stripe: customers.

Facts an adapter relies on (sources in fixtures/SOURCES.md):

- Paging: ``GET /v1/customers?limit=<=100&starting_after=<last id>``; answers
  ``{"object": "list", "url", "has_more", "data"}``, newest first. ``created[gte]``/
  ``created[gt]`` filter by creation time (there is no updated-at filter: changes after
  creation arrive by webhook or by listing ``/v1/events``).
- Writes are form-encoded: create ``POST /v1/customers`` (200), update
  ``POST /v1/customers/{id}`` (200), delete ``DELETE /v1/customers/{id}`` ->
  ``{"id", "object": "customer", "deleted": true}``. Send ``Idempotency-Key`` on every POST:
  a retry with the same key replays the stored response (``Idempotent-Replayed: true``,
  ``Original-Request``); the same key with other parameters -> 400 ``idempotency_error``.
- Limits: 429 with ``Stripe-Rate-Limited-Reason`` (global-rate, endpoint-rate,
  global-concurrency, endpoint-concurrency, resource-specific); a 429 ``lock_timeout`` has no
  such header and is an object lock. No ``Retry-After``: back off exponentially with jitter.
  ``Stripe-Should-Retry`` says whether a retry can succeed.
- Errors: ``{"error": {"type", "code", "message", "param", "doc_url", "request_log_url"}}``;
  bad key -> 401 ``invalid_request_error`` without a code; missing object -> 404
  ``resource_missing``.
- Pin ``Stripe-Version`` (config ``api_version``) so payloads keep the fixtures' shape.

The adapter is ``adapter.py`` (form encoding in ``form.py``); ``webhooks.py`` holds the event
table and parses events (the ``stripe`` parser). Stripe sends no quota headers (a 429 names
its reason, which the adapter reads): no limit reader of its own.
"""

from integrations.providers.base import OAuthSpec, ProviderInfo

from .webhooks import EVENTS

PROVIDER = ProviderInfo(
    slug="stripe",
    name="Stripe",
    # Secret or restricted keys (sk_/rk_) are api keys sent as a bearer token; Connect
    # platforms act for connected accounts through OAuth.
    auth_types=("api_key", "oauth2_authorization_code"),
    api_base="https://api.stripe.com",
    entity_types=("customers",),
    display_fields={"customers": ("name", "email")},
    docs_url="https://docs.stripe.com/api/customers",
    oauth=OAuthSpec(
        authorize_url="https://connect.stripe.com/oauth/authorize",
        token_url="https://connect.stripe.com/oauth/token",  # noqa: S106  (an endpoint URL, not a password)
        scopes=("read_write",),
        pkce=False,
        scope_delimiter=" ",
        revoke_url="https://connect.stripe.com/oauth/deauthorize",
    ),
    rate_limit={
        "limit": 100,
        "window": 1,
        "scope": "account",
        "source": "Stripe: 100 operations per second per account in live mode",
        "test_mode": {
            "limit": 25,
            "window": 1,
            "scope": "account",
            "source": "Stripe: 25 operations per second in test mode and sandboxes",
        },
        "additional": (
            {
                "limit": 25,
                "window": 1,
                "scope": "endpoint",
                "source": "Individual API endpoints: 25 requests per second unless "
                "documented otherwise",
            },
            {
                "limit": 20,
                "window": 1,
                "scope": "account",
                "source": "Search API: 20 read operations per second",
            },
        ),
        "headers": ("Stripe-Rate-Limited-Reason", "Stripe-Should-Retry"),
    },
    webhook_scheme="stripe",
    # Keyed by the event's "type"; data.object is the full customer at event time.
    webhooks=EVENTS,
    test_connection="GET /v1/customers?limit=1",
    optional_config={
        "api_version": "2025-04-30.basil",
        # "test" selects the 25/s test-mode limit (read by ratelimit's catalogue).
        "mode": "live",
    },
    # Relative to this package, so a copied folder uses its own copy of the adapter.
    adapter=f"{__name__}.adapter.StripeAdapter",
)
