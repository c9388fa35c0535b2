"""The nine credential types, by slug (the same slug as ``Credential.type``)."""

from __future__ import annotations

from credentials.types.base import Cleaned, CredentialKind, CredentialValidationError, Field
from credentials.types.mtls import MtlsCertificate
from credentials.types.oauth2 import (
    OAuth2AuthorizationCode,
    OAuth2ClientCredentials,
    OAuth2JwtBearer,
)
from credentials.types.signing import HmacSigningSecret, OAuth1
from credentials.types.simple import ApiKey, Basic, BearerToken

TYPES: dict[str, CredentialKind] = {
    kind.slug: kind
    for kind in (
        OAuth2AuthorizationCode(),
        OAuth2ClientCredentials(),
        OAuth2JwtBearer(),
        ApiKey(),
        Basic(),
        BearerToken(),
        OAuth1(),
        HmacSigningSecret(),
        MtlsCertificate(),
    )
}


class UnknownCredentialType(LookupError):
    pass


def get_type(slug: str) -> CredentialKind:
    try:
        return TYPES[slug]
    except KeyError:
        raise UnknownCredentialType(slug) from None


__all__ = [
    "TYPES",
    "Cleaned",
    "CredentialKind",
    "CredentialValidationError",
    "Field",
    "UnknownCredentialType",
    "get_type",
]
