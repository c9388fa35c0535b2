"""OAuth2 credentials: authorization code (connect flow), client credentials, JWT bearer.

Each applies its current access token as ``Authorization: Bearer …`` and knows how to get
a new one (``grant``) through authlib; Castiel's refresh service decides *when*, under a lock.
Stored document: the user-supplied secret fields plus ``access_token``, ``token_type`` and,
for the authorization code type, ``refresh_token``.
"""

from __future__ import annotations

from authlib.oauth2.rfc7523 import JWTBearerGrant
from authlib.oauth2.rfc7523.assertion import sign_jwt_bearer_assertion
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from credentials.errors import GrantError
from credentials.oauth import (
    OAuthClientConfig,
    TokenEndpointSession,
    TokenResult,
    call_token_endpoint,
    oauth_config_for,
    token_result,
    token_session,
)
from credentials.types.base import CredentialKind, Field, HeaderAuth, http_url
from credentials.types.mtls import load_private_key


class BearerFromToken(CredentialKind):
    refreshable = True

    def applier(self, secret, settings):
        token = secret.get("access_token")
        if not token:
            return HeaderAuth()
        # RFC 6750 §2.1; providers answer "bearer" in any case, the header wants "Bearer".
        return HeaderAuth(headers={"Authorization": f"Bearer {token}"})

    def grant(self, *, credential, secret: dict) -> TokenResult:
        raise NotImplementedError


class OAuth2AuthorizationCode(BearerFromToken):
    slug = "oauth2_authorization_code"
    label = "OAuth2 authorization code"
    interactive = True

    def grant(self, *, credential, secret):
        refresh_token = secret.get("refresh_token")
        if not refresh_token:
            raise GrantError(
                "invalid_grant",
                "the provider issued no refresh token: the access token cannot be renewed "
                "without the user connecting again",
                transient=False,
            )
        config = oauth_config_for(credential.integration)
        # No scope on refresh: providers keep the granted scope, and some reject the param.
        session = TokenEndpointSession(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint_auth_method=config.token_endpoint_auth_method,
            provider=credential.integration.provider,
        )
        token = call_token_endpoint(
            session.refresh_token, config.token_url, refresh_token=refresh_token
        )
        return token_result(token, previous=secret)


class OAuth2ClientCredentials(BearerFromToken):
    slug = "oauth2_client_credentials"
    label = "OAuth2 client credentials"
    secret_fields = (Field("client_secret"),)
    settings_fields = (
        Field("token_url", check=http_url),
        Field("client_id"),
        Field("audience", required=False),
        Field(
            "token_endpoint_auth_method",
            required=False,
            choices=("client_secret_basic", "client_secret_post"),
            default="client_secret_basic",
        ),
    )

    def grant(self, *, credential, secret):
        settings = credential.settings
        config = OAuthClientConfig(
            client_id=settings["client_id"],
            client_secret=secret["client_secret"],
            authorize_url="",
            token_url=settings["token_url"],
            scopes=tuple(credential.scopes or ()),
            token_endpoint_auth_method=settings.get(
                "token_endpoint_auth_method", "client_secret_basic"
            ),
        )
        session = token_session(config, provider=credential.integration.provider)
        extra = {"audience": settings["audience"]} if settings.get("audience") else {}
        token = call_token_endpoint(
            session.fetch_token, config.token_url, grant_type="client_credentials", **extra
        )
        result = token_result(token)
        result.secret.pop("refresh_token", None)  # RFC 6749 §4.4.3: none should be issued
        return result


def _check_signing_key(value):
    key = load_private_key(value)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("must be an RSA or EC private key")
    return value


class OAuth2JwtBearer(BearerFromToken):
    """RFC 7523 JWT bearer grant (Google service accounts, Salesforce JWT flow)."""

    slug = "oauth2_jwt_bearer"
    label = "OAuth2 JWT bearer (service account)"
    secret_fields = (Field("private_key", check=_check_signing_key, help="PEM RSA or EC key."),)
    settings_fields = (
        Field("token_url", check=http_url),
        Field("issuer", help="iss: the client id / service account."),
        Field("subject", required=False, help="sub: the user to act as."),
        Field("audience", required=False, help="aud: defaults to the token URL."),
        Field("key_id", required=False, help="kid header."),
        Field("algorithm", required=False, choices=("RS256", "RS384", "RS512", "ES256")),
        Field("assertion_lifetime", required=False, check=lambda v: _seconds(v)),
    )

    def clean_together(self, cleaned, errors):
        key = load_private_key(cleaned.secret["private_key"])
        algorithm = cleaned.settings.get("algorithm")
        if algorithm is None:
            cleaned.settings["algorithm"] = (
                "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
            )
        elif algorithm.startswith("RS") != isinstance(key, rsa.RSAPrivateKey):
            errors["settings.algorithm"] = f"{algorithm} does not match the private key type"

    def grant(self, *, credential, secret):
        settings = credential.settings
        header = {"alg": settings.get("algorithm", "RS256")}
        if settings.get("key_id"):
            header["kid"] = settings["key_id"]
        # A joserfc key object (authlib 1.9 deprecates PEM strings here).
        key_class = ECKey if header["alg"].startswith("ES") else RSAKey
        assertion = sign_jwt_bearer_assertion(
            key=key_class.import_key(secret["private_key"]),
            issuer=settings["issuer"],
            audience=settings.get("audience") or settings["token_url"],
            subject=settings.get("subject"),
            header=header,
            expires_in=int(settings.get("assertion_lifetime") or 300),
        )
        if isinstance(assertion, bytes):
            assertion = assertion.decode()
        session = TokenEndpointSession(
            token_endpoint_auth_method="none",  # noqa: S106 - a method name
            scope=" ".join(credential.scopes) if credential.scopes else None,
            provider=credential.integration.provider,
        )
        token = call_token_endpoint(
            session.fetch_token,
            settings["token_url"],
            grant_type=JWTBearerGrant.GRANT_TYPE,
            assertion=assertion,
        )
        result = token_result(token)
        result.secret.pop("refresh_token", None)  # a new assertion is the way to renew
        return result


def _seconds(value) -> int:
    if not isinstance(value, int) or not 30 <= value <= 3600:
        raise ValueError("must be a number of seconds between 30 and 3600")
    return value
