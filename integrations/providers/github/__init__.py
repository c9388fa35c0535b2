"""GitHub (REST API v3): issues and repositories.

Facts an adapter relies on (sources in fixtures/SOURCES.md):

- Paging: the ``Link`` response header (rel="next"/"last"/"prev"/"first"); follow ``next``
  verbatim, never build page numbers. ``per_page`` max 100. Incremental issues:
  ``GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc&since=<ISO 8601>``
  (``since`` filters on ``updated_at``). The issues endpoints also return pull requests
  (items with a ``pull_request`` key): skip them for the ``issues`` entity.
- Limits: ``x-ratelimit-limit/-remaining/-used/-reset`` (reset in epoch seconds) and
  ``x-ratelimit-resource``. A 403 or 429 is a rate limit only when ``x-ratelimit-remaining``
  is ``0`` (primary; wait until ``x-ratelimit-reset``), or ``retry-after`` is present or the
  message says "secondary rate limit" (secondary; wait ``retry-after`` or at least 60 s);
  any other 403 is a permission error (fixtures ``rate_limited*`` vs ``error_forbidden``).
- Errors: ``{"message", "documentation_url", "status"}``; 422 adds ``errors`` with
  ``resource``/``field``/``code``. Bad token: 401 "Bad credentials".
- OAuth token errors come back as HTTP 200 with an ``error`` field (``bad_refresh_token``).
- GitHub Enterprise Server: set ``api_base`` to ``https://HOST/api/v3``; its OAuth URLs are
  ``https://HOST/login/oauth/...``.

The adapter (``adapter.py``) keys issues ``owner/repo#number`` and needs config
``repository`` for them; ``organization`` selects whose repositories are listed. The webhook
event table and parser (``webhooks.py``) name issues the same way; ``limits.py`` reads the
rate-limit headers (other resources than ``core`` are side quotas).
"""

from integrations.providers.base import OAuthSpec, ProviderInfo

from .limits import read as read_limits
from .webhooks import EVENTS

PROVIDER = ProviderInfo(
    slug="github",
    name="GitHub",
    # Personal access tokens (classic or fine-grained) are bearer tokens; OAuth apps and
    # GitHub App user tokens use the authorization-code flow. GitHub App installation
    # tokens (an app-signed JWT exchanged at /app/installations/{id}/access_tokens) are not
    # an RFC 7523 JWT-bearer grant, so oauth2_jwt_bearer is deliberately not listed.
    auth_types=("oauth2_authorization_code", "bearer_token"),
    api_base="https://api.github.com",
    entity_types=("issues", "repositories"),
    display_fields={
        "issues": ("title", "state", "user.login"),
        "repositories": ("full_name", "description"),
    },
    docs_url="https://docs.github.com/en/rest",
    oauth=OAuthSpec(
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",  # noqa: S106  (an endpoint URL, not a password)
        # repo: issues and repositories, private ones included; read:org: list org repos.
        scopes=("repo", "read:org"),
        # S256 PKCE is supported (GitHub changelog 2025-07-14), alongside the client secret.
        pkce=True,
        scope_delimiter=" ",
        # Not RFC 7009: DELETE with basic auth client_id:client_secret and a JSON body
        # {"access_token": ...}.
        revoke_url="https://api.github.com/applications/{client_id}/token",
    ),
    rate_limit={
        "limit": 5000,
        "window": 3600,
        "scope": "credential",
        "source": "GitHub REST: 5,000 requests per hour per user or installation token "
        "(15,000 for GitHub Enterprise Cloud organisations)",
        # Secondary limits are enforced on top; GitHub also caps 100 concurrent requests
        # (a concurrency limit, not a rate, so not expressible as a window).
        "additional": (
            {
                "limit": 900,
                "window": 60,
                "scope": "endpoint",
                "source": "Secondary: 900 points per minute per REST endpoint "
                "(GET/HEAD/OPTIONS 1 point, POST/PATCH/PUT/DELETE 5 points)",
            },
            {
                "limit": 80,
                "window": 60,
                "scope": "credential",
                "source": "Secondary: 80 content-generating requests per minute",
            },
            {
                "limit": 500,
                "window": 3600,
                "scope": "credential",
                "source": "Secondary: 500 content-generating requests per hour",
            },
        ),
        "headers": (
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-used",
            "x-ratelimit-reset",
            "x-ratelimit-resource",
            "retry-after",
        ),
    },
    limit_headers=read_limits,
    webhook_scheme="github",
    # Keyed by the X-GitHub-Event header; the body's "action" refines it (opened, edited,
    # closed, deleted, ...). push carries commits, not a repository snapshot: fetch it.
    webhooks=EVENTS,
    test_connection="GET /user",
    optional_config={
        "api_base": "https://api.github.com",
        # owner/name: the repository whose issues sync (needed for the issues entity).
        "repository": "",
        # The organisation whose repositories sync; empty: the authenticated user's.
        "organization": "",
    },
    # Relative to this package, so a copied folder uses its own copy of the adapter.
    adapter=f"{__name__}.adapter.GitHubAdapter",
)
