"""Tenant API: notification channels, subscriptions, incidents and deliveries (tenant-scoped:
a tenant sees and changes only its own; operator channels and platform incidents are not
visible here)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet
from castiel.api.errors import ApiError
from castiel.api.filters import after, before, id_filter
from castiel.api.schema import error_example, error_response
from notifications import delivery, incidents, services
from notifications.api.serializers import (
    ChannelSerializer,
    DeliverySerializer,
    IncidentSerializer,
    SubscriptionSerializer,
)
from notifications.models import Channel, Delivery, Incident, Subscription


def _who(request) -> str:
    user = getattr(request, "user", None)
    key = getattr(user, "api_key", None)
    return f"api key {getattr(key, 'prefix', '') or 'tenant'}"


@extend_schema_view(
    list=extend_schema(summary="List notification channels"),
    create=extend_schema(
        summary="Create a channel (Slack, Teams, email or signed webhook; secrets write-only)",
        examples=[
            OpenApiExample(
                "Slack incoming webhook",
                value={
                    "name": "#ops",
                    "type": "slack",
                    "url": "https://hooks.slack.com/services/T000/B000/XXXX",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Signed webhook to your application",
                value={
                    "name": "our app",
                    "type": "webhook",
                    "url": "https://app.example.com/hooks",
                },
                request_only=True,
            ),
        ],
    ),
    retrieve=extend_schema(summary="Get a channel"),
    update=extend_schema(summary="Replace a channel"),
    partial_update=extend_schema(summary="Update a channel (a secret given replaces it)"),
    destroy=extend_schema(summary="Delete a channel, its subscriptions and its secret"),
)
@extend_schema(tags=["notifications"])
class ChannelViewSet(TenantModelViewSet):
    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    filterset_fields = ["type", "enabled"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        services.channel_delete(channel=instance)

    @extend_schema(
        summary="Send a test notification now and show the channel's answer",
        request=None,
        responses={200: DeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, *args, **kwargs):
        channel = self.get_object()
        sent = delivery.send_test(channel)
        return Response(DeliverySerializer(sent).data)


@extend_schema_view(
    list=extend_schema(summary="List notification subscriptions"),
    create=extend_schema(
        summary="Subscribe a channel to incidents (immediately or as a digest)",
        examples=[
            OpenApiExample(
                "Errors at once, quiet at night",
                value={
                    "name": "errors",
                    "channel": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
                    "min_severity": "error",
                    "mode": "immediate",
                    "timezone": "Europe/Berlin",
                    "quiet_start": "22:00",
                    "quiet_end": "07:00",
                },
                request_only=True,
            ),
            OpenApiExample(
                "A daily digest at 09:00",
                value={
                    "name": "daily",
                    "channel": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
                    "mode": "digest",
                    "digest_every": "daily",
                    "digest_time": "09:00",
                    "timezone": "America/New_York",
                },
                request_only=True,
            ),
        ],
    ),
    retrieve=extend_schema(summary="Get a subscription"),
    update=extend_schema(summary="Replace a subscription"),
    partial_update=extend_schema(summary="Update a subscription"),
    destroy=extend_schema(summary="Delete a subscription"),
)
@extend_schema(tags=["notifications"])
class SubscriptionViewSet(TenantModelViewSet):
    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_fields = ["mode", "enabled"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]


class IncidentFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")
    seen_after = after("last_seen_at")
    seen_before = before("last_seen_at")

    class Meta:
        model = Incident
        fields = ["state", "kind"]


CONFLICT = error_response(
    "The incident is not in a state that allows this.",
    error_example("incident_state", "the incident is resolved already", status=409),
)


@extend_schema_view(
    list=extend_schema(summary="List incidents (filter by state)"),
    retrieve=extend_schema(summary="Get an incident"),
)
@extend_schema(tags=["notifications"])
class IncidentViewSet(TenantReadOnlyModelViewSet):
    queryset = Incident.objects.all()
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    ordering_fields = ["last_seen_at", "first_seen_at", "severity"]
    ordering = ["-last_seen_at"]

    @extend_schema(
        summary="Acknowledge an open incident (no reminders while someone is on it)",
        request=None,
        responses={200: IncidentSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        incident = self.get_object()
        if not incidents.acknowledge(incident, user=_who(request)):
            raise ApiError(f"the incident is {incident.state}", code="incident_state", status=409)
        incident.refresh_from_db()
        return Response(self.get_serializer(incident).data)

    @extend_schema(
        summary="Resolve an incident by hand (sends the resolution notices)",
        request=None,
        responses={200: IncidentSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, *args, **kwargs):
        incident = self.get_object()
        if not incidents.resolve_by_hand(incident, user=_who(request)):
            raise ApiError("the incident is resolved already", code="incident_state", status=409)
        incident.refresh_from_db()
        return Response(self.get_serializer(incident).data)


class DeliveryFilter(django_filters.FilterSet):
    channel = id_filter("channel_id", "Channel id.")
    incident = id_filter("incident_id", "Incident id.")
    queued_after = after("queued_at")
    queued_before = before("queued_at")

    class Meta:
        model = Delivery
        fields = ["status", "kind"]


@extend_schema_view(
    list=extend_schema(summary="List notification deliveries (status, attempts, answers)"),
    retrieve=extend_schema(summary="Get a delivery"),
)
@extend_schema(tags=["notifications"])
class DeliveryViewSet(TenantReadOnlyModelViewSet):
    queryset = Delivery.objects.all()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    ordering_fields = ["id", "queued_at"]
    ordering = ["-id"]

    @extend_schema(
        summary="Replay a dead (or cancelled) delivery: queued again, at the back",
        request=None,
        responses={
            202: DeliverySerializer,
            409: error_response(
                "Only dead or cancelled deliveries are replayed.",
                error_example("replay_refused", "the delivery is delivered", status=409),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, *args, **kwargs):
        item = self.get_object()
        if not delivery.replay(item):
            raise ApiError(f"the delivery is {item.status}", code="replay_refused", status=409)
        item.refresh_from_db()
        return Response(self.get_serializer(item).data, status=status.HTTP_202_ACCEPTED)
