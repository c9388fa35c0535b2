"""The OAuth2 authorization-code connect flow (authlib does the protocol).

start → an authorize URL carrying a random ``state`` (only its SHA-256 is stored, with the
tenant, the integration, the redirect URI and an expiry) and a PKCE S256 challenge unless the
provider switches PKCE off; finish (the callback) → the state is consumed exactly once by a
conditional UPDATE, checked for expiry, and the code is exchanged with the PKCE verifier.
Every failure is a :class:`ConnectError` with a stable code and a clear message; nothing is
stored unless the exchange succeeded.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from castiel.observability.logging import get_logger
from credentials.errors import GrantError, OAuthConfigError
from credentials.models import Credential, CredentialType, OAuthState
from credentials.oauth import (
    TokenEndpointSession,
    call_token_endpoint,
    integration_config_from_token,
    oauth_config_for,
    token_result,
    token_session,
)
from credentials.services import credential_store_oauth_tokens, oauth_client_secret_set

log = get_logger(__name__)


class ConnectError(Exception):
    def __init__(self, code: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ConnectStart:
    authorize_url: str
    expires_at: datetime
    redirect_uri: str


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def pkce_verifier(state: str) -> str:
    """The PKCE code verifier for ``state``: HMAC(SECRET_KEY, state), base64url, 43 chars.

    Derived rather than stored, so the database never holds a verifier; the state is
    random and single-use, and without SECRET_KEY the verifier cannot be computed from it.
    """
    digest = salted_hmac("castiel.credentials.pkce", state, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def oauth_connect_start(
    *,
    integration,
    redirect_uri: str,
    scopes: list[str] | None = None,
    return_url: str = "",
    client_secret: str | None = None,
) -> ConnectStart:
    provider = integration.provider_info
    if CredentialType.OAUTH2_AUTHORIZATION_CODE not in provider.auth_types:
        raise ConnectError(
            "oauth_not_supported",
            f"provider {provider.slug!r} does not connect with OAuth2 authorization code",
        )
    if client_secret:
        oauth_client_secret_set(integration=integration, client_secret=client_secret)
    try:
        config = oauth_config_for(integration, with_secret=False)
    except OAuthConfigError as exc:
        raise ConnectError("oauth_not_configured", str(exc)) from None
    state = secrets.token_urlsafe(32)
    redirect = config.redirect_uri or redirect_uri
    scope_list = list(scopes if scopes is not None else config.scopes)
    session = TokenEndpointSession(
        client_id=config.client_id,
        redirect_uri=redirect,
        scope=config.scope_delimiter.join(scope_list) if scope_list else None,
        code_challenge_method="S256" if config.pkce else None,
        provider=integration.provider,
    )
    url, _ = session.create_authorization_url(
        config.authorize_url,
        state=state,
        code_verifier=pkce_verifier(state) if config.pkce else None,
        **config.extra_authorize_params,
    )
    expires_at = timezone.now() + timedelta(seconds=settings.CASTIEL_OAUTH_STATE_TTL_SECONDS)
    OAuthState.objects.create(
        tenant=integration.tenant,
        integration=integration,
        state_hash=state_digest(state),
        redirect_uri=redirect,
        scopes=scope_list,
        pkce=config.pkce,
        return_url=return_url,
        expires_at=expires_at,
    )
    log.info(
        "oauth.connect_started",
        integration_id=str(integration.pk),
        pkce=config.pkce,
        scopes=scope_list,
    )
    return ConnectStart(authorize_url=url, expires_at=expires_at, redirect_uri=redirect)


def oauth_connect_finish(
    *,
    state: str | None,
    code: str | None,
    error: str | None = None,
    error_description: str | None = None,
) -> tuple[Credential, OAuthState]:
    if not state:
        raise ConnectError("state_missing", "The callback carries no state: start again.")
    row = (
        OAuthState.objects.select_related("integration", "integration__tenant")
        .filter(state_hash=state_digest(state))
        .first()
    )
    if row is None:
        raise ConnectError(
            "state_invalid", "Unknown authorization state: start the connection again."
        )
    now = timezone.now()
    # Single use, also under concurrent callbacks: only one UPDATE can flip used_at.
    if not OAuthState.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
        raise ConnectError(
            "state_used", "This authorization was already used: start the connection again."
        )
    if row.expires_at <= now:
        raise ConnectError(
            "state_expired",
            "This authorization expired before the provider redirected back: start again.",
        )
    integration = row.integration
    if error:
        detail = f" ({error_description[:200]})" if error_description else ""
        raise ConnectError(
            "access_denied" if error == "access_denied" else "provider_error",
            f"The provider did not grant access: {error[:100]}{detail}. Nothing was stored.",
        )
    if not code:
        raise ConnectError("code_missing", "The callback carries no authorization code.")
    try:
        config = oauth_config_for(integration)
        session = token_session(
            config, provider=integration.provider, redirect_uri=row.redirect_uri
        )
        extra = {"code_verifier": pkce_verifier(state)} if row.pkce else {}
        token = call_token_endpoint(
            session.fetch_token,
            config.token_url,
            grant_type="authorization_code",
            code=code,
            redirect_uri=row.redirect_uri,
            **extra,
        )
        result = token_result(token)
    except OAuthConfigError as exc:
        raise ConnectError("oauth_not_configured", str(exc)) from None
    except GrantError as exc:
        log.warning(
            "oauth.exchange_failed", integration_id=str(integration.pk), error_code=exc.code
        )
        raise ConnectError(
            "exchange_failed",
            f"The provider refused the authorization code: {exc.message}. Nothing was stored.",
            status=502 if exc.transient else 400,
        ) from None
    credential = credential_store_oauth_tokens(
        integration=integration, result=result, requested_scopes=row.scopes
    )
    integration_config_from_token(integration, result)
    return credential, row
