from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from integrations.models import Integration
from ratelimit.models import RateLimitOverride
from ratelimit.policy import MAX_WINDOW_SECONDS
from ratelimit.selectors import usage_for


class RateLimitOverrideSerializer(TenantModelSerializer):
    window_seconds = serializers.FloatField(min_value=1.0, max_value=MAX_WINDOW_SECONDS)
    # The column is a PositiveIntegerField: bound it here, or a huge limit is a database
    # error (500) instead of a 400.
    limit = serializers.IntegerField(min_value=1, max_value=2**31 - 1)

    class Meta:
        model = RateLimitOverride
        fields = [
            "id",
            "integration",
            "level",
            "operation",
            "limit",
            "window_seconds",
            "note",
            "set_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "set_by", "created_at", "updated_at"]

    def validate(self, attrs):
        def current(name, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, default) if self.instance else default

        level = current("level")
        integration = current("integration")
        operation = current("operation", "") or ""
        errors = {}
        if level == RateLimitOverride.Level.TENANT and integration is not None:
            errors["integration"] = "A tenant-level limit applies to the whole tenant."
        if level == RateLimitOverride.Level.OPERATION and not operation:
            errors["operation"] = "Name the operation this limit applies to."
        if level != RateLimitOverride.Level.OPERATION and operation:
            errors["operation"] = "Only operation-level limits name an operation."
        if errors:
            raise serializers.ValidationError(errors)
        tenant = self.context.get("tenant")
        clash = RateLimitOverride.objects.filter(
            tenant=tenant, level=level, operation=operation, integration=integration
        )
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {"level": "An override for this level, operation and integration exists."}
            )
        return attrs


class LevelUsageSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["tenant", "integration", "operation"])
    operation = serializers.CharField(allow_null=True)
    limit = serializers.IntegerField(help_text="Configured limit per window.")
    effective_limit = serializers.IntegerField(
        help_text="The limit after provider feedback (adaptive multiplier)."
    )
    window_seconds = serializers.FloatField()
    used = serializers.IntegerField(help_text="Units admitted in the current sliding window.")
    remaining = serializers.IntegerField()
    headroom = serializers.FloatField(help_text="remaining / effective_limit (0 to 1).")
    source = serializers.CharField(help_text="Where the limit comes from.")


class UsageSerializer(serializers.Serializer):
    multiplier = serializers.FloatField(
        help_text="Provider feedback scales the integration and operation limits by this."
    )
    blocked_until = serializers.DateTimeField(
        allow_null=True, help_text="The provider asked us to send nothing before this time."
    )
    degraded = serializers.BooleanField(
        help_text="True while Redis is unreachable and this process limits locally."
    )
    levels = LevelUsageSerializer(many=True)


class IntegrationRateLimitSerializer(serializers.ModelSerializer):
    """An integration's limits and their current usage."""

    usage = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = ["id", "name", "provider", "usage"]
        read_only_fields = fields

    @extend_schema_field(UsageSerializer)
    def get_usage(self, integration):
        from datetime import UTC, datetime

        _policy, usage = usage_for(integration)
        blocked = usage.state.blocked_until
        return {
            "multiplier": round(usage.state.multiplier, 3),
            "blocked_until": (
                datetime.fromtimestamp(blocked, tz=UTC).isoformat() if blocked else None
            ),
            "degraded": usage.degraded,
            "levels": [
                {
                    "level": level.level,
                    "operation": level.operation,
                    "limit": level.limit.limit,
                    "effective_limit": level.effective_limit,
                    "window_seconds": level.limit.window,
                    "used": level.used,
                    "remaining": level.remaining,
                    "headroom": level.headroom,
                    "source": level.limit.source,
                }
                for level in usage.levels
            ],
        }
