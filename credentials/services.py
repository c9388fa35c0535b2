"""Writes on credentials: create, store OAuth tokens, revoke. Keyword-only, one job each."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from castiel import events
from castiel.observability.logging import get_logger
from credentials.errors import GrantError
from credentials.models import Credential, CredentialStatus, CredentialType
from credentials.oauth import (
    TokenResult,
    call_token_endpoint,
    client_secret_name,
    oauth_config_for,
    token_session,
)
from credentials.secrets import secret_store
from credentials.secrets_io import read_document, secret_name_for, write_document
from credentials.timing import renew_after_for
from credentials.types import CredentialValidationError, UnknownCredentialType, get_type

log = get_logger(__name__)


class CredentialConflictError(Exception):
    """The integration already has a live credential."""


def credential_create(
    *,
    integration,
    type: str,
    secret: dict | None,
    settings: dict | None = None,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> Credential:
    """Validate and store a non-interactive credential; nothing is stored when invalid."""
    try:
        kind = get_type(type)
    except UnknownCredentialType:
        known = ", ".join(sorted(CredentialType.values))
        raise CredentialValidationError(
            {"type": f"unknown credential type {type!r}; known types: {known}"}
        ) from None
    if kind.interactive:
        raise CredentialValidationError(
            {
                "type": f"{type} credentials are created by the OAuth2 connect flow "
                "(POST /api/v1/credentials/connect/), not by posting tokens"
            }
        )
    cleaned = kind.clean(secret=secret, settings=settings)
    if live_credential_exists(integration):
        raise CredentialConflictError(
            f"integration {integration.name!r} already has a live credential; revoke it first"
        )
    credential = Credential(
        id=uuid.uuid4(),
        tenant=integration.tenant,
        integration=integration,
        type=type,
        settings=cleaned.settings,
        scopes=list(scopes or []),
        expires_at=expires_at or cleaned.expires_at,
    )
    credential.secret_name = secret_name_for(credential)
    version = write_document(credential, cleaned.secret)
    credential.secret_version = version.version
    credential.secret_fields = sorted(cleaned.secret)
    try:
        with transaction.atomic():
            credential.save(force_insert=True)
    except IntegrityError:
        secret_store().delete(credential.secret_name)  # nothing stored on failure
        raise CredentialConflictError(
            f"integration {integration.name!r} already has a live credential; revoke it first"
        ) from None
    from credentials.refresh import notify

    notify(credential, events.Kind.CREDENTIAL_HEALTHY)  # a reconnect resolves reauth/expiry
    log.info(
        "credential.created",
        cred=str(credential.pk),
        integration_id=str(integration.pk),
        type=type,
    )
    return credential


def live_credential_exists(integration) -> bool:
    return (
        Credential.objects.filter(integration=integration)
        .exclude(status=CredentialStatus.REVOKED)
        .exists()
    )


def credential_store_oauth_tokens(
    *, integration, result: TokenResult, requested_scopes: list[str]
) -> Credential:
    """Save the tokens of a completed connect flow (new credential, or a new version of the
    integration's authorization-code credential when it reconnects)."""
    now = timezone.now()
    with transaction.atomic():
        current = (
            Credential.objects.select_for_update()
            .filter(integration=integration)
            .exclude(status=CredentialStatus.REVOKED)
            .first()
        )
        if current is not None and current.type != CredentialType.OAUTH2_AUTHORIZATION_CODE:
            _revoke_row(current, reason="replaced by an OAuth2 connection")
            current = None
        credential = current or Credential(
            id=uuid.uuid4(),
            tenant=integration.tenant,
            integration=integration,
            type=CredentialType.OAUTH2_AUTHORIZATION_CODE,
        )
        if not credential.secret_name:
            credential.secret_name = secret_name_for(credential)
        version = write_document(credential, result.secret)
        credential.secret_version = version.version
        credential.secret_fields = sorted(result.secret)
        credential.scopes = result.scopes if result.scopes is not None else requested_scopes
        credential.expires_at = result.expires_at
        credential.renew_after = renew_after_for(result.expires_at, now=now)
        credential.refresh_expires_at = result.refresh_expires_at
        credential.last_refreshed_at = now
        credential.status = CredentialStatus.ACTIVE
        credential.status_reason = ""
        credential.failure_count = 0
        credential.next_retry_at = None
        credential.last_error = ""
        credential.save()
        _resume_integration(integration)
    log.info(
        "credential.connected",
        cred=str(credential.pk),
        integration_id=str(integration.pk),
        reconnected=current is not None,
    )
    return credential


def _resume_integration(integration) -> None:
    from integrations.models import Integration

    Integration.objects.filter(pk=integration.pk, status=Integration.Status.REAUTH_REQUIRED).update(
        status=Integration.Status.ACTIVE, status_reason="", updated_at=timezone.now()
    )


def credential_revoke(*, credential: Credential, reason: str = "revoked by the user") -> Credential:
    """Revoke at the provider when it supports it (best effort), then locally; the secret
    document is deleted from the store so no value outlives the credential."""
    if credential.status == CredentialStatus.REVOKED:
        return credential
    if credential.type == CredentialType.OAUTH2_AUTHORIZATION_CODE:
        _revoke_at_provider(credential)
    with transaction.atomic():
        credential = Credential.objects.select_for_update().get(pk=credential.pk)
        _revoke_row(credential, reason=reason)
    log.info("credential.revoked", cred=str(credential.pk))
    return credential


def _revoke_row(credential: Credential, *, reason: str) -> None:
    credential.status = CredentialStatus.REVOKED
    credential.status_reason = reason
    credential.revoked_at = timezone.now()
    credential.save(update_fields=["status", "status_reason", "revoked_at", "updated_at"])
    transaction.on_commit(lambda name=credential.secret_name: secret_store().delete(name))


def _revoke_at_provider(credential: Credential) -> None:
    try:
        config = oauth_config_for(credential.integration)
        if not config.revoke_url:
            return
        document = read_document(credential)
        token = document.get("refresh_token") or document.get("access_token")
        if not token:
            return
        session = token_session(config, provider=credential.integration.provider)
        hint = "refresh_token" if document.get("refresh_token") else "access_token"
        call_token_endpoint(
            session.revoke_token, config.revoke_url, token=token, token_type_hint=hint
        )
    except (GrantError, Exception) as exc:  # revocation is a courtesy to the provider
        log.warning(
            "credential.provider_revoke_failed",
            cred=str(credential.pk),
            error=exc.__class__.__name__,
        )


def oauth_client_secret_set(*, integration, client_secret: str) -> None:
    """Store the OAuth2 client secret of ``integration`` (a new version in the store)."""
    secret_store().put(
        client_secret_name(integration),
        client_secret,
        tags={"tenant": str(integration.tenant_id), "integration": str(integration.pk)},
    )
