from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet
from castiel.api.errors import ApiError
from castiel.api.filters import after, before, id_filter
from castiel.api.schema import error_example, error_response
from webhooks import processing, registrations
from webhooks.api.serializers import (
    RotateSecretSerializer,
    WebhookEventDetailSerializer,
    WebhookEventSerializer,
    WebhookRegistrationSerializer,
)
from webhooks.models import WebhookEvent, WebhookRegistration


class WebhookRegistrationFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")

    class Meta:
        model = WebhookRegistration
        fields = ["scheme", "is_active"]


REGISTRATION_EXAMPLES = [
    OpenApiExample(
        "Standard Webhooks",
        value={
            "name": "CRM changes",
            "integration": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
            "scheme": "standard_webhooks",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "parser": "generic",
            "parser_config": {
                "type": "type",
                "entity_type": "=contacts",
                "external_id": "data.id",
                "payload": "data",
                "complete": True,
            },
            "event_types": ["contacts.*"],
        },
        request_only=True,
    )
]


@extend_schema_view(
    list=extend_schema(summary="List webhook registrations"),
    create=extend_schema(
        summary="Create a webhook registration (the secret is write-only)",
        examples=REGISTRATION_EXAMPLES,
    ),
    retrieve=extend_schema(summary="Get a webhook registration"),
    update=extend_schema(summary="Replace a webhook registration"),
    partial_update=extend_schema(summary="Update a webhook registration"),
    destroy=extend_schema(summary="Delete a webhook registration and its secret"),
)
@extend_schema(tags=["webhooks"])
class WebhookRegistrationViewSet(TenantModelViewSet):
    queryset = WebhookRegistration.objects.all()
    serializer_class = WebhookRegistrationSerializer
    filterset_class = WebhookRegistrationFilter
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        registrations.registration_delete(registration=instance)

    @extend_schema(
        summary="Rotate the signing secret",
        description=(
            "The new secret is current at once; the previous one keeps being accepted for "
            "`overlap_seconds` so deliveries signed before the provider switched still pass."
        ),
        request=RotateSecretSerializer,
        responses=WebhookRegistrationSerializer,
        examples=[
            OpenApiExample(
                "Rotate, accepting the old secret for an hour",
                value={"secret": "whsec_bmV3IHNlY3JldCBmb3IgdGhlIGRvY3M=", "overlap_seconds": 3600},
                request_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, *args, **kwargs):
        registration = self.get_object()
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            registration = registrations.registration_rotate_secret(
                registration=registration, **serializer.validated_data
            )
        except DjangoValidationError as exc:
            raise ApiError(
                "Invalid secret.", code="invalid", status=400, details=exc.message_dict
            ) from None
        return Response(self.get_serializer(registration).data)


class WebhookEventFilter(django_filters.FilterSet):
    registration = id_filter("registration_id", "Webhook registration id.")
    received_after = after("received_at")
    received_before = before("received_at")

    class Meta:
        model = WebhookEvent
        fields = [
            "outcome",
            "status",
            "reason",
            "event_type",
            "entity_type",
            "external_id",
            "dedupe_key",
            "correlation_id",
        ]


@extend_schema_view(
    list=extend_schema(summary="List webhook deliveries (the audit trail)"),
    retrieve=extend_schema(summary="Get a webhook delivery with headers and body"),
)
@extend_schema(tags=["webhooks"])
class WebhookEventViewSet(TenantReadOnlyModelViewSet):
    queryset = WebhookEvent.objects.select_related("registration")
    serializer_class = WebhookEventSerializer
    filterset_class = WebhookEventFilter
    ordering_fields = ["received_at", "processed_at"]
    ordering = ["-received_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = queryset.defer("body", "headers", "actions")
        return queryset

    def get_serializer_class(self):
        if self.action in ("retrieve", "replay"):
            return WebhookEventDetailSerializer
        return WebhookEventSerializer

    @extend_schema(
        summary="Replay a stored event",
        description=(
            "Processes the stored, already verified event again (no signature or timestamp "
            "check). Only accepted events can be replayed."
        ),
        request=None,
        responses={
            202: WebhookEventDetailSerializer,
            409: error_response(
                "Not an accepted event (rejected and duplicate deliveries were never stored "
                "for processing), or a worker is processing it right now.",
                error_example(
                    "replay_refused",
                    "only accepted events can be replayed (this one was not stored)",
                    status=409,
                ),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, *args, **kwargs):
        event = self.get_object()
        try:
            event = processing.event_replay(event=event)
        except processing.ReplayRefused as exc:
            raise ApiError(str(exc), code="replay_refused", status=409) from None
        return Response(self.get_serializer(event).data, status=status.HTTP_202_ACCEPTED)
