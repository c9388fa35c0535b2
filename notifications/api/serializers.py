from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from castiel.events import CATALOGUE, Kind, Severity
from notifications import channels, services
from notifications.models import Channel, Delivery, Incident, Subscription

SEVERITIES = [s.label for s in Severity]


# Patterns, not enums: drf-spectacular names enum components after the field, and "mode" and
# severities are taken by choice sets of other apps.
@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
        "example": "08:30",
        "description": "A wall-clock time in the subscription's time zone (no offset).",
    }
)
class LocalTimeField(serializers.TimeField):
    """``HH:MM[:SS]`` in the subscription's own time zone. OpenAPI's ``format: time`` means an
    RFC 3339 time *with* an offset, which a local time has not."""


@extend_schema_field({"type": "string", "pattern": "^(info|warning|error|critical)$"})
class SeverityField(serializers.ChoiceField):
    """A severity by name (``info``, ``warning``, ``error``, ``critical``); stored as a number."""

    def __init__(self, **kwargs):
        super().__init__(choices=SEVERITIES, **kwargs)

    def to_internal_value(self, data):
        return int(Severity[str(super().to_internal_value(data)).upper()])

    def to_representation(self, value):
        try:
            return Severity(int(value)).label
        except ValueError:
            return str(value)


MODES = [m.value for m in Subscription.Mode]


@extend_schema_field({"type": "string", "pattern": "^(immediate|digest)$"})
class ModeField(serializers.ChoiceField):
    """``immediate`` or ``digest``."""

    def __init__(self, **kwargs):
        super().__init__(choices=MODES, **kwargs)


def _field_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(
        exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
    )


class ChannelSerializer(TenantModelSerializer):
    type = serializers.ChoiceField(choices=sorted(channels.TYPES), help_text="Channel type.")
    url = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Slack / Teams: the webhook URL (write-only: a secret, kept in the secret "
        "store). Signed webhook: the receiving URL. https only in production.",
    )
    recipients = serializers.ListField(
        child=serializers.CharField(max_length=254),
        required=False,
        max_length=50,
        help_text="Email: the recipients.",
    )
    signing_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=200,
        style={"input_type": "password"},
        help_text="Signed webhook: whsec_… (write-only). Left out on create, one is generated "
        "and returned once, in the create answer only.",
    )
    conversation = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Slack bot: the conversation (channel) ID to post to, e.g. C06K1M3P5R7.",
    )
    target = serializers.CharField(
        source="target_hint", read_only=True, help_text="Where it goes (secrets left out)."
    )
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "type",
            "enabled",
            "url",
            "recipients",
            "signing_secret",
            "integration",
            "conversation",
            "rate_limit_per_minute",
            "target",
            "has_secret",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "target",
            "has_secret",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "rate_limit_per_minute": {"max_value": 6000},
            "integration": {
                "required": False,
                "help_text": "Slack bot: the connected Slack integration whose bot token posts.",
            },
        }

    def validate_type(self, value):
        if self.instance is not None and value != self.instance.type:
            raise serializers.ValidationError("The type of a channel cannot change.")
        return value

    def create(self, validated_data):
        tenant = validated_data.pop("tenant", None)
        try:
            channel, generated = services.channel_create(tenant=tenant, **validated_data)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from None
        channel._generated_secret = generated
        return channel

    def update(self, instance, validated_data):
        validated_data.pop("type", None)
        validated_data.pop("tenant", None)
        try:
            return services.channel_update(channel=instance, **validated_data)
        except DjangoValidationError as exc:
            raise _field_errors(exc) from None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["recipients"] = list(instance.recipients or [])
        generated = getattr(instance, "_generated_secret", None)
        if generated:
            data["signing_secret"] = generated  # once: in the answer that created it
        return data


class SubscriptionSerializer(TenantModelSerializer):
    event_kinds = serializers.ListField(
        # Incident kinds only: tenant application events go to event subscriptions.
        child=serializers.ChoiceField(
            choices=sorted(k.value for k in Kind if CATALOGUE[k].incident)
        ),
        required=False,
        max_length=len(Kind),
        help_text="Event kinds to include; empty = every kind.",
    )
    min_severity = SeverityField(required=False, help_text="The least severe incident sent.")
    mode = ModeField(required=False, help_text="Send at once, or in a digest.")
    digest_time = LocalTimeField(
        required=False, allow_null=True, help_text="Daily digests: the local time to send at."
    )
    quiet_start = LocalTimeField(required=False, allow_null=True)
    quiet_end = LocalTimeField(required=False, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "channel",
            "enabled",
            "event_kinds",
            "min_severity",
            "integrations",
            "mode",
            "notify_resolved",
            "digest_every",
            "digest_minutes",
            "digest_time",
            "timezone",
            "quiet_start",
            "quiet_end",
            "critical_during_quiet",
            "next_digest_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "next_digest_at", "created_at", "updated_at"]
        extra_kwargs = {
            "digest_minutes": {"max_value": 1440},
            "integrations": {"required": False},
            "timezone": {"help_text": "IANA time zone of the quiet hours and daily digests."},
        }

    def validate(self, attrs):
        merged = {}
        if self.instance is not None:
            merged = {
                f: getattr(self.instance, f)
                for f in self.Meta.fields
                if f not in ("id", "integrations", "next_digest_at", "created_at", "updated_at")
            }
        merged.update(attrs)
        tenant = self.context.get("tenant")
        errors = services.subscription_errors(merged, tenant=tenant)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _schedule(self, subscription):
        services.schedule_digest(subscription, now=timezone.now())
        subscription.save(update_fields=["digest_from", "next_digest_at"])
        return subscription

    def create(self, validated_data):
        return self._schedule(super().create(validated_data))

    def update(self, instance, validated_data):
        return self._schedule(super().update(instance, validated_data))


class SubjectSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    label = serializers.CharField()


class IncidentSerializer(serializers.ModelSerializer):
    title = serializers.CharField(read_only=True)
    severity = SeverityField(read_only=True)
    subject = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "kind",
            "title",
            "state",
            "severity",
            "fingerprint",
            "subject",
            "integration_id",
            "message",
            "details",
            "occurrences",
            "first_seen_at",
            "last_seen_at",
            "reminders_sent",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
        ]
        read_only_fields = fields

    @extend_schema_field(SubjectSerializer)
    def get_subject(self, obj) -> dict:
        return {"type": obj.subject_type, "id": obj.subject_id, "label": obj.subject_label}


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "message_id",
            "kind",
            "channel",
            "subscription",
            "incident",
            "digest",
            "status",
            "attempts",
            "max_attempts",
            "queued_at",
            "next_attempt_at",
            "held_reason",
            "first_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "duration_ms",
            "response_status",
            "response_body",
            "last_error",
            "replays",
            "message",
            "created_at",
        ]
        read_only_fields = fields
