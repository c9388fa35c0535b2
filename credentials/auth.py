"""How an integration's credential is applied to outbound requests.

``auth_for(integration)`` returns a :class:`CredentialAuth` (a ``requests.auth.AuthBase``)
for the integration's live credential, or None when it has none. ``OutboundClient`` calls it
for every request, reads ``send_kwargs`` (a client certificate for mTLS) and, on a 401,
calls ``on_unauthorized(response)``: refresh once, then the client retries once.

The secret document is read from the store once per secret version and kept in memory for
the life of the client; an expired token is refreshed before the request is sent.
"""

from __future__ import annotations

import requests

from credentials.errors import CredentialUnavailableError
from credentials.models import Credential, CredentialStatus, TokenRefreshAudit
from credentials.secrets_io import read_document


def live_credential_for(integration) -> Credential | None:
    return (
        Credential.objects.filter(integration=integration)
        .exclude(status=CredentialStatus.REVOKED)
        .select_related("integration")
        .first()
    )


def auth_for(integration) -> CredentialAuth | None:
    credential = live_credential_for(integration)
    if credential is None:
        return None
    return CredentialAuth(credential)


class CredentialAuth(requests.auth.AuthBase):
    def __init__(self, credential: Credential):
        self.credential = credential
        self._applier = None
        self._applier_version: str | None = None
        # The version whose on-demand refresh just failed: not retried for every request
        # of this client (the schedule and next_retry_at take over).
        self._failed_refresh_version: str | None = None

    def __repr__(self) -> str:  # never the secret
        return f"CredentialAuth({self.credential.type}, {self.credential.pk})"

    # -- requests.auth.AuthBase --------------------------------------------------------------

    def __call__(self, request):
        return self._current()(request)

    # -- OutboundClient hooks ----------------------------------------------------------------

    @property
    def send_kwargs(self) -> dict:
        return dict(getattr(self._current(), "send_kwargs", None) or {})

    def on_unauthorized(self, response) -> bool:
        """The provider answered 401: refresh once (single-flight) and say whether to retry."""
        credential = self.credential
        if not credential.kind.refreshable or not credential.is_usable:
            return False
        from credentials.refresh import credential_refresh

        used = self._applier_version or credential.secret_version
        result = credential_refresh(
            credential_id=credential.pk,
            trigger=TokenRefreshAudit.Trigger.ON_DEMAND,
            seen_version=used,
        )
        self.credential = result.credential
        return self.credential.is_usable and self.credential.secret_version != used

    # -- internals ---------------------------------------------------------------------------

    def _current(self):
        credential = self.credential
        self._ensure_usable(credential)
        kind = credential.kind
        if kind.refreshable:
            from credentials.refresh import credential_refresh
            from credentials.timing import needs_new_token

            stale = credential.secret_version == self._failed_refresh_version
            if needs_new_token(credential) and not stale:
                result = credential_refresh(
                    credential_id=credential.pk, trigger=TokenRefreshAudit.Trigger.ON_DEMAND
                )
                self.credential = credential = result.credential
                if result.outcome not in ("refreshed", "skipped"):
                    self._failed_refresh_version = credential.secret_version
                self._ensure_usable(credential)
        if self._applier is None or self._applier_version != credential.secret_version:
            document = read_document(credential)
            self._close_applier()
            self._applier = kind.applier(document, credential.settings or {})
            self._applier_version = credential.secret_version
        return self._applier

    def _ensure_usable(self, credential: Credential) -> None:
        if not credential.is_usable:
            raise CredentialUnavailableError(
                f"the {credential.get_type_display()} credential of integration "
                f"{credential.integration_id} is {credential.status}: "
                f"{credential.status_reason or 'connect the integration again'}"
            )

    def _close_applier(self) -> None:
        close = getattr(self._applier, "close", None)
        if close is not None:
            close()
        self._applier = None
