"""Generic OAuth2 API: any REST API behind an OAuth2 authorization server.

The endpoints and client id come from the integration's ``config.oauth`` (``authorize_url``,
``token_url``, ``client_id``, optional ``revoke_url``, ``scopes``, ``pkce``,
``token_endpoint_auth_method``, ``extra_authorize_params``, ``redirect_uri``); the client
secret is kept in the secret store (connect API ``client_secret`` or the admin connect form).
See docs/credentials.md.
"""

from integrations.providers.base import ProviderInfo

PROVIDER = ProviderInfo(
    slug="oauth2_generic",
    name="Generic OAuth2 API",
    auth_types=(
        "oauth2_authorization_code",
        "oauth2_client_credentials",
        "oauth2_jwt_bearer",
        "bearer_token",
    ),
    required_config=("base_url", "oauth"),
    docs_url="https://www.rfc-editor.org/rfc/rfc6749",
)
