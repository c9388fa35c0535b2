from __future__ import annotations

import base64

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer
from webhooks import registrations
from webhooks.models import WebhookEvent, WebhookRegistration
from webhooks.schemes import SCHEMES, get_scheme
from webhooks.validation import registration_errors

CONFIG_FIELDS = (
    "scheme",
    "scheme_config",
    "parser",
    "parser_config",
    "dedupe_rule",
    "event_types",
    "routes",
)


def receive_url(request, registration_id) -> str:
    path = reverse("webhook-receive", kwargs={"registration_id": str(registration_id)})
    base = settings.CASTIEL_WEBHOOK_PUBLIC_BASE_URL
    if base:
        return base.rstrip("/") + path
    return request.build_absolute_uri(path) if request is not None else path


class WebhookRegistrationSerializer(TenantModelSerializer):
    scheme = serializers.ChoiceField(choices=sorted(SCHEMES), help_text="Signature scheme.")
    secret = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Signing secret (write-only; on create only — use rotate-secret to change it).",
    )
    url = serializers.SerializerMethodField(help_text="Give this URL to the provider.")
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = WebhookRegistration
        fields = [
            "id",
            *registrations.EDITABLE_FIELDS,
            "url",
            "has_secret",
            "secret",
            "secret_rotated_at",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "url",
            "has_secret",
            "secret_rotated_at",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.URLField())
    def get_url(self, obj) -> str:
        return receive_url(self.context.get("request"), obj.pk)

    def validate(self, attrs):
        if self.instance is not None and "secret" in attrs:
            raise serializers.ValidationError(
                {"secret": "The secret cannot be changed here; use the rotate-secret action."}
            )
        merged = {}
        for name in CONFIG_FIELDS:
            default = WebhookRegistration._meta.get_field(name).get_default()
            merged[name] = attrs.get(name, getattr(self.instance, name, default))
        errors = registration_errors(**merged)
        if "secret" in attrs and "scheme" not in errors:
            problem = get_scheme(merged["scheme"]).validate_secret(attrs["secret"])
            if problem:
                errors["secret"] = problem
        tenant = self.context.get("tenant")
        name = attrs.get("name")
        if tenant is not None and name:
            clash = WebhookRegistration.objects.filter(tenant=tenant, name=name)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                errors["name"] = "A webhook registration with this name exists."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated_data):
        try:
            return registrations.registration_create(**validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None

    def update(self, instance, validated_data):
        try:
            return registrations.registration_update(registration=instance, **validated_data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None


MAX_OVERLAP_SECONDS = 366 * 24 * 3600


class RotateSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    overlap_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_OVERLAP_SECONDS,  # unbounded, now + overlap overflows (a 500)
        required=False,
        help_text=(
            "How long the previous secret stays valid (default: "
            "CASTIEL_WEBHOOK_SECRET_OVERLAP_SECONDS; 0 = revoke it now)."
        ),
    )


class WebhookEventSerializer(TenantModelSerializer):
    # Plain strings in the schema: an enum named "status" would collide with other apps'.
    status = serializers.CharField(
        read_only=True,
        help_text="Processing: received, processing, retrying, processed, ignored, failed "
        "(empty for deliveries that were not accepted).",
    )
    outcome = serializers.CharField(
        read_only=True, help_text="accepted, duplicate, rejected or handshake."
    )

    class Meta:
        model = WebhookEvent
        fields = [
            "id",
            "registration",
            "outcome",
            "reason",
            "http_status",
            "status",
            "dedupe_key",
            "duplicate_of",
            "method",
            "content_type",
            "body_size",
            "remote_addr",
            "correlation_id",
            "matched_secret",
            "received_at",
            "receive_ms",
            "provider",
            "event_type",
            "entity_type",
            "external_id",
            "occurred_at",
            "attempts",
            "next_attempt_at",
            "processed_at",
            "processing_ms",
            "last_error",
            "replay_count",
            "last_replayed_at",
        ]
        read_only_fields = fields


class WebhookEventDetailSerializer(WebhookEventSerializer):
    body = serializers.SerializerMethodField(help_text="The raw body (text, or base64).")
    body_encoding = serializers.SerializerMethodField(help_text="utf-8 or base64.")

    class Meta(WebhookEventSerializer.Meta):
        fields = [
            *WebhookEventSerializer.Meta.fields,
            "query_string",
            "headers",
            "body",
            "body_encoding",
            "actions",
        ]
        read_only_fields = fields

    def _display(self, obj) -> bytes:
        raw = bytes(obj.body or b"")
        try:
            return get_scheme(obj.registration.scheme).display_body(raw)
        except KeyError:
            return raw

    def get_body(self, obj) -> str:
        raw = self._display(obj)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()

    def get_body_encoding(self, obj) -> str:
        try:
            self._display(obj).decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            return "base64"
