"""Tenant API: event subscriptions — which tenant application events (``sync.completed`` …)
go to which of the tenant's signed-webhook channels (notifications/event_webhooks.py).

Kept apart from the incident subscriptions' serializers and views: a different model with
none of their severity, digest or quiet-hour fields.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers

from castiel.api.base import TenantModelSerializer, TenantModelViewSet
from notifications import event_webhooks
from notifications.models import EventSubscription


class EventSubscriptionSerializer(TenantModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(event_webhooks.EVENT_TYPE_VALUES)),
        required=False,
        max_length=len(event_webhooks.EVENT_TYPE_VALUES),
        help_text="Event types to send; empty = every type except webhook.received "
        "(sent only when named).",
    )

    class Meta:
        model = EventSubscription
        fields = [
            "id",
            "name",
            "channel",
            "enabled",
            "event_types",
            "integrations",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "channel": {"help_text": "One of your signed-webhook channels (type webhook)."},
            "integrations": {"required": False},
        }

    def validate_channel(self, channel):
        error = event_webhooks.channel_error(channel, self.context.get("tenant"))
        if error:
            raise serializers.ValidationError(error)
        return channel

    def validate_event_types(self, value):
        return sorted(set(value))


@extend_schema_view(
    list=extend_schema(summary="List event subscriptions (events for your application)"),
    create=extend_schema(
        summary="Send events (sync.completed, records.changed …) to a signed-webhook channel",
        examples=[
            OpenApiExample(
                "Sync results to our application",
                value={
                    "name": "sync results",
                    "channel": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
                    "event_types": ["sync.completed", "sync.failed"],
                },
                request_only=True,
            ),
        ],
    ),
    retrieve=extend_schema(summary="Get an event subscription"),
    update=extend_schema(summary="Replace an event subscription"),
    partial_update=extend_schema(summary="Update an event subscription"),
    destroy=extend_schema(summary="Delete an event subscription"),
)
@extend_schema(tags=["notifications"])
class EventSubscriptionViewSet(TenantModelViewSet):
    queryset = EventSubscription.objects.all()
    serializer_class = EventSubscriptionSerializer
    filterset_fields = ["enabled", "channel"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
