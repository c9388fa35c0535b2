"""Credential errors. Messages name credentials and integrations, never secret values."""

from __future__ import annotations

from castiel.http.errors import AuthUnavailable, OutboundError


class CredentialError(OutboundError):
    """A credential cannot be applied. Raised inside outbound calls, so it is an
    ``OutboundError`` (not retryable): the HTTP client passes it through unchanged."""

    code = "credential_error"  # stable codes recorded on runs and pushes


class CredentialUnavailableError(CredentialError, AuthUnavailable):
    """The credential needs re-authorisation or was revoked: calls must wait for a human."""

    code = "credential_unavailable"


class OAuthConfigError(CredentialError):
    """The integration's OAuth2 client configuration is incomplete or invalid."""

    code = "oauth_config_error"


class GrantError(Exception):
    """A token endpoint refused or failed a grant.

    ``code`` is the OAuth2 error code (``invalid_grant`` …) or a transport/HTTP code;
    ``transient`` says whether trying again later can help.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after

    @property
    def needs_reauth(self) -> bool:
        return self.code == "invalid_grant"


class RefreshBusyError(GrantError):
    """Another worker holds the refresh lock for too long."""

    def __init__(self, message: str):
        super().__init__("lock_timeout", message, transient=True)
