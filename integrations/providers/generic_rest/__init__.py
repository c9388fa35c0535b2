"""Generic REST: any paginated JSON API, configured per integration.

The options (list path, pagination style, id / updated-at / deleted fields, since parameter)
are documented in :mod:`integrations.adapters.rest`; auth comes from the credential.
``config.display_fields`` names what shows a record per entity type (``{"contacts": ["name",
"email"]}``, dotted paths, the first the title; see ``ProviderInfo.display_fields``). For an
API behind an OAuth2 authorization server, ``config.oauth`` holds the endpoints and client id
(``authorize_url``, ``token_url``, ``client_id``, optional ``revoke_url``, ``scopes``,
``pkce``, ``token_endpoint_auth_method``, ``extra_authorize_params``, ``redirect_uri``); the
client secret is kept in the secret store (see docs/credentials.md). Rate-limit headers: every
dialect the catalogue knows (``limits.py``).
"""

from dataclasses import dataclass

from integrations.providers.base import ProviderInfo, display_field_problems

from .limits import read as read_limits


@dataclass(frozen=True)
class GenericRestProvider(ProviderInfo):
    def validate_config(self, config: dict) -> dict[str, str]:
        from integrations.adapters.rest import validate_config

        errors = super().validate_config(config)
        for key, message in validate_config(config).items():
            errors.setdefault(key, message)
        if "display_fields" in (config or {}):
            for message in display_field_problems(config["display_fields"]):
                errors.setdefault("display_fields", message)
        return errors


PROVIDER = GenericRestProvider(
    slug="generic_rest",
    name="Generic REST API",
    auth_types=(
        "api_key",
        "bearer_token",
        "basic",
        "oauth2_authorization_code",
        "oauth2_client_credentials",
        "oauth2_jwt_bearer",
        "oauth1",
        "hmac_signing_secret",
        "mtls_certificate",
    ),
    required_config=("base_url",),
    docs_url="https://github.com/typicode/json-server",
    # No published limit for an arbitrary API: a polite default; override per integration.
    rate_limit={
        "limit": 300,
        "window": 60,
        "scope": "credential",
        "source": "Generic REST: 300 requests/min default",
    },
    limit_headers=read_limits,
    adapter="integrations.adapters.rest.GenericRestAdapter",
)
