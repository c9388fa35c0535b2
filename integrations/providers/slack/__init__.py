"""Slack (Web API and Events API): users and conversations, posting messages.

Facts an adapter relies on (sources in fixtures/SOURCES.md):

- Paging: cursor-based; pass ``cursor=<response_metadata.next_cursor>`` and ``limit``
  (<= 1000, Slack recommends 200); an empty ``next_cursor`` ends the list.
  ``users.list`` -> ``members``; ``conversations.list`` -> ``channels`` (``types=
  public_channel,private_channel``, ``exclude_archived``). Neither has a changed-since
  filter: a full list per sync, changes in between via the Events API.
- Errors: HTTP 200 with ``{"ok": false, "error": "<code>"}`` (invalid_auth, token_revoked,
  missing_scope with ``needed``/``provided``, channel_not_found): always check ``ok``.
  Granted scopes are in the ``x-oauth-scopes`` response header, the method's accepted ones
  in ``x-accepted-oauth-scopes``.
- Limits: per method per workspace per app, by tier (users.list and conversations.list are
  Tier 2, 20+ per minute); over the limit -> HTTP 429 ``{"ok": false, "error":
  "ratelimited"}`` with ``Retry-After`` in seconds. chat.postMessage: about one message per
  second per channel.
- Events API: ``url_verification`` must be answered with its ``challenge``; events arrive
  wrapped in ``event_callback`` (``event_id`` for dedupe, ``event.type`` names the event).

The adapter is ``adapter.py`` (``messages`` is the outbound "post a message" action);
``webhooks.py`` holds the event table and parses Events API payloads (the ``slack`` parser).
Limit feedback is ``Retry-After``, which the generic header families read.
"""

from integrations.providers.base import OAuthSpec, ProviderInfo

from .webhooks import EVENTS

PROVIDER = ProviderInfo(
    slug="slack",
    name="Slack",
    # Bot tokens (xoxb-) pasted from an app's settings are bearer tokens.
    auth_types=("oauth2_authorization_code", "bearer_token"),
    api_base="https://slack.com/api",
    # messages: the outbound action "post a message" (chat.postMessage as a create); pulled
    # entities are users and conversations.
    entity_types=("users", "conversations", "messages"),
    display_fields={
        "users": ("real_name", "name", "profile.email"),
        "conversations": ("name", "topic.value"),
        "messages": ("text", "channel"),
    },
    docs_url="https://docs.slack.dev/reference/methods",
    oauth=OAuthSpec(
        authorize_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",  # noqa: S106  (an endpoint URL, not a password)
        scopes=("users:read", "users:read.email", "channels:read", "groups:read", "chat:write"),
        # Slack supports PKCE only for apps switched to public clients (one-way; their
        # refresh tokens expire after 30 days); a server-side integration keeps its secret.
        pkce=False,
        scope_delimiter=",",
        revoke_url="https://slack.com/api/auth.revoke",
    ),
    rate_limit={
        "limit": 20,
        "window": 60,
        "scope": "method",
        "source": "Slack Web API Tier 2: 20+ requests per minute per method per workspace "
        "(users.list, conversations.list)",
        "additional": (
            {
                "limit": 1,
                "window": 1,
                "scope": "method",
                "source": "chat.postMessage: about 1 message per second per channel, short "
                "bursts allowed",
            },
        ),
        "headers": ("Retry-After",),
    },
    webhook_scheme="slack",
    # Keyed by event.type inside event_callback envelopes (url_verification is the
    # handshake, not an event).
    webhooks=EVENTS,
    test_connection="POST /auth.test",
    # Relative to this package, so a copied folder uses its own copy of the adapter.
    adapter=f"{__name__}.adapter.SlackAdapter",
)
