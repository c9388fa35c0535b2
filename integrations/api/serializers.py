from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from integrations.models import Integration
from integrations.providers import registry


class IntegrationSerializer(TenantModelSerializer):
    provider = serializers.CharField(max_length=64, help_text="Provider slug from the catalogue.")

    class Meta:
        model = Integration
        fields = [
            "id",
            "provider",
            "name",
            "config",
            "enabled",
            "status",
            "status_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "status_reason", "created_at", "updated_at"]

    def validate_provider(self, value):
        try:
            registry.get(value)
        except registry.UnknownProvider:
            known = ", ".join(p.slug for p in registry.all_providers())
            raise serializers.ValidationError(
                f"Unknown provider {value!r}. Known providers: {known}."
            ) from None
        if self.instance is not None and self.instance.provider != value:
            raise serializers.ValidationError("The provider of an integration cannot change.")
        return value

    def validate(self, attrs):
        provider_slug = attrs.get("provider") or getattr(self.instance, "provider", None)
        config = attrs.get("config", getattr(self.instance, "config", None)) or {}
        if not isinstance(config, dict):
            raise serializers.ValidationError({"config": "Must be a JSON object."})
        errors = registry.get(provider_slug).validate_config(config)
        if errors:
            raise serializers.ValidationError({"config": errors})
        tenant = self.context.get("tenant")
        name = attrs.get("name")
        if tenant is not None and name:
            clash = Integration.objects.filter(tenant=tenant, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError({"name": "An integration with this name exists."})
        return attrs


class ConnectionResultSerializer(serializers.Serializer):
    """What a connection test found (``ok`` false is a finding, not an API error)."""

    ok = serializers.BooleanField()
    code = serializers.CharField(
        help_text="ok, or why not: no_credential, credential_unavailable, invalid_credentials, "
        "missing_scope, forbidden, not_found, host_not_found, connection_failed, timeout, "
        "unexpected_response, rate_limited, invalid_config, unknown_provider …"
    )
    message = serializers.CharField()
    details = serializers.DictField()


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
