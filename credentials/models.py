from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class StoredSecret(models.Model):
    """One version of one secret in the encrypted database store (Fernet ciphertext only)."""

    name = models.CharField(max_length=127)
    version = models.PositiveIntegerField()
    ciphertext = models.TextField(editable=False)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_on = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="stored_secret_version")
        ]
        indexes = [models.Index(fields=["name", "-version"], name="stored_secret_latest")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class CredentialType(models.TextChoices):
    OAUTH2_AUTHORIZATION_CODE = "oauth2_authorization_code", "OAuth2 authorization code"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"
    OAUTH2_JWT_BEARER = "oauth2_jwt_bearer", "OAuth2 JWT bearer (service account)"
    API_KEY = "api_key", "API key"
    BASIC = "basic", "HTTP basic"
    BEARER_TOKEN = "bearer_token", "Bearer token"
    OAUTH1 = "oauth1", "OAuth 1.0a (HMAC-SHA1)"
    HMAC_SIGNING_SECRET = "hmac_signing_secret", "HMAC signing secret"
    MTLS_CERTIFICATE = "mtls_certificate", "mTLS client certificate"


class CredentialStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRING = "expiring", "Expiring soon"
    REAUTH_REQUIRED = "reauth_required", "Re-authorisation required"
    REVOKED = "revoked", "Revoked"
    ERROR = "error", "Error"


class Credential(TenantOwned):
    """How Castiel authenticates to one integration. Values live in the secret store.

    The row holds only metadata and a reference (``secret_name`` + ``secret_version``) to a
    JSON document in the secret store; ``secret_fields`` lists which fields that document
    holds so lists can show them masked without reading the store.
    """

    Type = CredentialType
    Status = CredentialStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="credentials"
    )
    type = models.CharField(max_length=40, choices=CredentialType.choices)
    status = models.CharField(
        max_length=20, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE
    )
    status_reason = models.TextField(blank=True, default="")
    # Non-secret parameters of the type (header name, token URL, signature method …).
    settings = models.JSONField(default=dict, blank=True)
    secret_name = models.CharField(max_length=127, editable=False)
    secret_version = models.CharField(max_length=64, blank=True, default="", editable=False)
    secret_fields = models.JSONField(default=list, blank=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Half-way through the token's lifetime: no refresh before then (unless it expired), so a
    # token shorter-lived than the look-ahead is not renewed at every scheduler run.
    renew_after = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Refresh lease for databases without row locks (SQLite): taken by a conditional UPDATE.
    refresh_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    refresh_lease_owner = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live credential per integration: that is the one ``auth_for`` applies.
            models.UniqueConstraint(
                fields=["integration"],
                condition=~Q(status="revoked"),
                name="credential_one_live_per_integration",
            )
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="credential_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} for {self.integration_id}"

    @property
    def kind(self):
        from credentials.types import get_type

        return get_type(self.type)

    @property
    def is_usable(self) -> bool:
        return self.status not in (CredentialStatus.REAUTH_REQUIRED, CredentialStatus.REVOKED)


class OAuthState(TenantOwned):
    """One pending OAuth2 authorization: single-use, expiring, bound to tenant + integration.

    Only a SHA-256 digest of the ``state`` parameter is stored; the raw value exists only in
    the authorize URL. The PKCE verifier is derived from the state with the site's
    SECRET_KEY (see credentials.oauth.pkce_verifier), so no verifier is stored either.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="+"
    )
    state_hash = models.CharField(max_length=64, unique=True, editable=False)
    redirect_uri = models.URLField(max_length=500)
    scopes = models.JSONField(default=list, blank=True)
    pkce = models.BooleanField(default=True)
    return_url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "OAuth state"

    def __str__(self) -> str:
        return f"OAuth state for {self.integration_id}"


class TokenRefreshAudit(models.Model):
    """One refresh attempt: who asked, what happened, how long it took. Never a secret."""

    TENANT_PATH = "credential__tenant"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        ON_DEMAND = "on_demand", "On demand"
        MANUAL = "manual", "Manual"

    class Outcome(models.TextChoices):
        REFRESHED = "refreshed", "Refreshed"
        SKIPPED = "skipped", "Skipped (already fresh)"
        REAUTH_REQUIRED = "reauth_required", "Re-authorisation required"
        TRANSIENT_ERROR = "transient_error", "Transient error"
        ERROR = "error", "Error"

    id = models.BigAutoField(primary_key=True)
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="audits")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error_code = models.CharField(max_length=100, blank=True, default="")
    message = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    secret_version = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "token refresh audit"

    def __str__(self) -> str:
        return f"{self.trigger} {self.outcome} ({self.credential_id})"
