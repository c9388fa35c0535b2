"""Generic REST: any paginated JSON API, configured per integration."""

from integrations.providers.base import ProviderInfo

PROVIDER = ProviderInfo(
    slug="generic_rest",
    name="Generic REST API",
    auth_types=("api_key", "bearer_token", "basic", "oauth2_client_credentials"),
    required_config=("base_url",),
    docs_url="https://github.com/typicode/json-server",
)
