"""OAuth2 client plumbing: per-integration client configuration and the token-endpoint session.

The protocol is authlib's (``OAuth2Session``: authorization URL, PKCE S256, code exchange,
refresh, client authentication, error parsing). Castiel adds two things around it:

* where the client configuration comes from: the provider's catalogue ``OAuthSpec``,
  overridden key by key by ``Integration.config["oauth"]`` (``client_id``, ``authorize_url``,
  ``token_url``, ``revoke_url``, ``scopes``, ``pkce``, ``token_endpoint_auth_method``,
  ``extra_authorize_params``, ``redirect_uri``), and the client secret from the secret store
  (``oauth-client-<integration id>``, written by the connect API or the admin);
* the same outbound guard as ``OutboundClient`` on every token-endpoint request (SSRF check,
  connections only to the address the guard checked, timeouts, no redirects, metrics, one
  log line without secrets). ``OutboundClient.request``
  cannot host authlib's client-authentication ``auth=`` objects, so the session's ``send``
  applies the guard instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings

from castiel.http import ssrf, transport
from castiel.http.errors import HttpError, OutboundError, classify, classify_exception
from castiel.observability import metrics
from castiel.observability.logging import get_logger
from credentials.errors import GrantError, OAuthConfigError
from credentials.secrets import SecretNotFoundError, secret_store

log = get_logger(__name__)

# RFC 6749 §5.2 / §4.1.2.1 error codes after which trying again later can succeed.
TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def client_secret_name(integration) -> str:
    return f"oauth-client-{integration.pk.hex}"


@dataclass(frozen=True)
class OAuthClientConfig:
    client_id: str
    authorize_url: str
    token_url: str
    client_secret: str | None = field(default=None, repr=False)
    revoke_url: str | None = None
    scopes: tuple[str, ...] = ()
    scope_delimiter: str = " "
    pkce: bool = True
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method name
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None


def oauth_config_for(integration, *, with_secret: bool = True) -> OAuthClientConfig:
    """The OAuth2 client configuration of ``integration`` (catalogue + overrides)."""
    spec = integration.provider_info.oauth
    overrides = (integration.config or {}).get("oauth") or {}
    if not isinstance(overrides, dict):
        raise OAuthConfigError(f"integration {integration.pk}: config.oauth must be an object")

    def pick(key, default=None):
        if key in overrides and overrides[key] not in (None, ""):
            return overrides[key]
        return getattr(spec, key, default) if spec is not None else default

    missing = [k for k in ("client_id", "authorize_url", "token_url") if not pick(k)]
    if missing:
        raise OAuthConfigError(
            f"integration {integration.name!r} has no OAuth2 {', '.join(missing)}: set "
            f"config.oauth.{missing[0]} (provider {integration.provider!r})"
        )
    secret = None
    if with_secret:
        try:
            secret = secret_store().get(client_secret_name(integration)).value
        except SecretNotFoundError:
            secret = None  # a public client (PKCE, no secret)
    scopes = pick("scopes", ()) or ()
    if isinstance(scopes, str):
        scopes = scopes.split()
    method = pick("token_endpoint_auth_method") or ("client_secret_basic" if secret else "none")
    if method not in AUTH_METHODS:
        raise OAuthConfigError(
            f"config.oauth.token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    return OAuthClientConfig(
        client_id=str(pick("client_id")),
        client_secret=secret,
        authorize_url=str(pick("authorize_url")),
        token_url=str(pick("token_url")),
        revoke_url=pick("revoke_url"),
        scopes=tuple(scopes),
        scope_delimiter=pick("scope_delimiter", " ") or " ",
        pkce=bool(pick("pkce", True)),
        token_endpoint_auth_method=method,
        extra_authorize_params=dict(pick("extra_authorize_params", {}) or {}),
        redirect_uri=overrides.get("redirect_uri") or None,
    )


# One connection pool for every token session of the process: a session lives for one grant,
# and building a pool per grant (and opening a new connection each time) was a tenth of a
# refresh's own CPU in the token_refresh bench. urllib3's pools are thread-safe. Guarded: a
# new connection goes to the address the SSRF guard checked (castiel.http.transport).
_SHARED_ADAPTER = transport.GuardedAdapter(pool_connections=32, pool_maxsize=32)
_ENV_SETTINGS_TTL = 60.0
_env_settings: dict[tuple, tuple[float, dict]] = {}


class TokenEndpointSession(OAuth2Session):
    """authlib's requests session with Castiel's outbound guard on every send."""

    def __init__(self, *args, provider: str = "oauth", **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.headers["User-Agent"] = "Castiel/1.0"
        transport.guard(self, _SHARED_ADAPTER)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests' own answer, kept a minute per origin: left alone it walks the whole
        process environment for proxy and CA-bundle variables on every token request."""
        parts = urlsplit(url)
        key = (
            parts.scheme,
            parts.netloc,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert if not isinstance(cert, list) else tuple(cert),
            self.trust_env,
        )
        now = time.monotonic()
        cached = _env_settings.get(key)
        if cached is None or now - cached[0] > _ENV_SETTINGS_TTL:
            settings_ = super().merge_environment_settings(url, proxies, stream, verify, cert)
            cached = _env_settings[key] = (now, settings_)
        return {k: dict(v) if isinstance(v, dict) else v for k, v in cached[1].items()}

    def send(self, request, **kwargs):
        proxies = kwargs.get("proxies") or {}
        proxied = bool(proxies) and requests.utils.select_proxy(request.url, proxies) is not None
        ssrf.check_url(request.url, proxied=proxied)
        kwargs["allow_redirects"] = False  # a token endpoint that redirects is misconfigured
        if not kwargs.get("timeout"):
            kwargs["timeout"] = (
                settings.CASTIEL_OUTBOUND_CONNECT_TIMEOUT,
                settings.CASTIEL_OUTBOUND_TIMEOUT,
            )
        started = time.perf_counter()
        outcome = "error"
        try:
            try:
                response = super().send(request, **kwargs)
            except Exception as exc:
                raise classify_exception(exc) from exc
            outcome = f"{response.status_code // 100}xx"
            # Rate limits and server errors are transient whatever the body says (a 429
            # with an OAuth-looking JSON error is still "try later", with its Retry-After).
            error = classify(response, what="token request")
            if error is not None and error.retryable:
                raise error
            return response
        finally:
            duration = time.perf_counter() - started
            metrics.OUTBOUND_REQUESTS.labels(self.provider, outcome).inc()
            metrics.OUTBOUND_DURATION.labels(self.provider).observe(duration)
            log.info(
                "outbound.token_request",
                provider=self.provider,
                target=_describe(request.url),
                outcome=outcome,
                duration_ms=round(duration * 1000, 1),
            )


def token_session(config: OAuthClientConfig, *, provider: str, **kwargs) -> TokenEndpointSession:
    return TokenEndpointSession(
        client_id=config.client_id,
        client_secret=config.client_secret,
        token_endpoint_auth_method=config.token_endpoint_auth_method,
        scope=config.scope_delimiter.join(config.scopes) if config.scopes else None,
        provider=provider,
        **kwargs,
    )


@dataclass
class TokenResult:
    """A token response, normalised. ``secret`` holds the fields that go to the store."""

    secret: dict[str, Any] = field(repr=False)
    expires_at: datetime | None
    refresh_expires_at: datetime | None
    scopes: list[str] | None
    refresh_token_rotated: bool
    # The response's other, non-secret fields (Salesforce's instance_url and id …): a
    # provider may take configuration from them (ProviderInfo.config_from_token).
    response_fields: dict[str, Any] = field(default_factory=dict)


def token_result(token: dict, *, previous: dict | None = None) -> TokenResult:
    """Normalise a token response; keep the old refresh token when none is returned."""
    previous = previous or {}
    if not token.get("access_token"):
        raise GrantError("invalid_response", "token response has no access_token", transient=False)
    secret = {
        "access_token": token["access_token"],
        "token_type": token.get("token_type") or "Bearer",
    }
    new_refresh = token.get("refresh_token")
    old_refresh = previous.get("refresh_token")
    if new_refresh:
        secret["refresh_token"] = new_refresh
    elif old_refresh:
        secret["refresh_token"] = old_refresh  # provider omitted it: the old one stays valid
    if token.get("id_token"):
        secret["id_token"] = token["id_token"]
    now = time.time()
    expires_at = None
    if token.get("expires_at"):
        expires_at = _ts(float(token["expires_at"]))
    elif token.get("expires_in"):
        expires_at = _ts(now + float(token["expires_in"]))
    refresh_expires_at = None
    for key in ("refresh_token_expires_in", "refresh_expires_in"):
        if token.get(key):
            refresh_expires_at = _ts(now + float(token[key]))
            break
    scope = token.get("scope")
    scopes = (
        scope.split() if isinstance(scope, str) else (scope if isinstance(scope, list) else None)
    )
    return TokenResult(
        secret=secret,
        expires_at=expires_at,
        refresh_expires_at=refresh_expires_at,
        scopes=scopes,
        refresh_token_rotated=bool(new_refresh and new_refresh != old_refresh),
        response_fields={
            k: v for k, v in token.items() if k not in _SECRET_TOKEN_FIELDS and isinstance(v, str)
        },
    )


_SECRET_TOKEN_FIELDS = frozenset({"access_token", "refresh_token", "id_token", "signature"})


def integration_config_from_token(integration, result: TokenResult) -> None:
    """Let the provider take configuration from a token response (e.g. Salesforce answers
    with the org's ``instance_url``), saving the integration only when something changed."""
    from django.utils.module_loading import import_string

    path = integration.provider_info.config_from_token
    if not path or not result.response_fields:
        return
    updates = import_string(path)(result.response_fields) or {}
    config = dict(integration.config or {})
    changed = {k: v for k, v in updates.items() if v and config.get(k) != v}
    if not changed:
        return
    config.update(changed)
    type(integration).objects.filter(pk=integration.pk).update(config=config)
    integration.config = config
    log.info("oauth.config_from_token", integration_id=str(integration.pk), keys=sorted(changed))


def call_token_endpoint(fn, *args, **kwargs) -> dict:
    """Run an authlib grant call and turn every failure into a classified ``GrantError``."""
    try:
        return fn(*args, **kwargs)
    except OAuthError as exc:
        code = exc.error or "oauth_error"
        description = exc.description or ""
        message = f"the token endpoint answered {code}" + (
            f": {description}" if description else ""
        )
        raise GrantError(code, message[:500], transient=code in TRANSIENT_OAUTH_ERRORS) from None
    except requests.HTTPError as exc:
        error = classify(exc.response, what="token request")
        raise GrantError(
            f"http_{exc.response.status_code}",
            str(error),
            transient=bool(error and error.retryable),
            retry_after=error.retry_after if error else None,
        ) from None
    except OutboundError as exc:
        code = f"http_{exc.status}" if isinstance(exc, HttpError) else exc.code
        raise GrantError(
            code, str(exc), transient=exc.retryable, retry_after=exc.retry_after
        ) from None
    except ValueError as exc:  # authlib: the response body is not a JSON object
        raise GrantError("invalid_response", str(exc)[:300], transient=False) from None


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _describe(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
