"""Credential API shapes. Secret values are write-only: after storing, only the names of the
stored fields are ever returned (masked)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer, TenantScopedSerializerMixin
from credentials.models import Credential, CredentialType, TokenRefreshAudit
from integrations.models import Integration

MASK = "********"


class CredentialSerializer(TenantModelSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The stored secret fields, masked. Values are never returned."
    )
    integration_status = serializers.CharField(source="integration.status", read_only=True)

    class Meta:
        model = Credential
        fields = [
            "id",
            "integration",
            "integration_status",
            "type",
            "status",
            "status_reason",
            "settings",
            "secret",
            "scopes",
            "expires_at",
            "refresh_expires_at",
            "last_refreshed_at",
            "failure_count",
            "next_retry_at",
            "last_error",
            "secret_version",
            "created_at",
            "updated_at",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_secret(self, obj) -> dict[str, str]:
        return {name: MASK for name in obj.secret_fields or []}


class CredentialCreateSerializer(TenantScopedSerializerMixin, serializers.Serializer):
    """Create a credential for a non-interactive type (everything but the connect flow)."""

    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.all())
    type = serializers.CharField(
        help_text="One of: "
        + ", ".join(t for t in CredentialType.values if t != "oauth2_authorization_code")
    )
    secret = serializers.DictField(
        write_only=True, help_text="Type-specific secret fields (write-only)."
    )
    settings = serializers.DictField(required=False, default=dict)
    scopes = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the secret stops working, if known."
    )


class ConnectStartSerializer(TenantScopedSerializerMixin, serializers.Serializer):
    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.all())
    scopes = serializers.ListField(child=serializers.CharField(), required=False)
    client_secret = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="The OAuth2 client secret of this integration (stored write-only).",
    )
    return_url = serializers.CharField(
        required=False,
        default="",
        help_text="Relative URL the browser goes to after a successful connection.",
    )

    def validate_return_url(self, value):
        if value and (not value.startswith("/") or value.startswith("//")):
            raise serializers.ValidationError("must be a relative URL on this site")
        return value


class ConnectStartResponseSerializer(serializers.Serializer):
    authorize_url = serializers.URLField()
    redirect_uri = serializers.URLField()
    expires_at = serializers.DateTimeField()


class RefreshResponseSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    error_code = serializers.CharField()
    message = serializers.CharField()
    credential = CredentialSerializer()


class TokenRefreshAuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = TokenRefreshAudit
        fields = [
            "id",
            "credential",
            "trigger",
            "outcome",
            "error_code",
            "message",
            "attempts",
            "duration_ms",
            "correlation_id",
            "secret_version",
            "created_at",
        ]
        read_only_fields = fields
