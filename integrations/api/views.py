from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet
from castiel.api.errors import ApiError
from castiel.api.schema import error_example, error_response
from integrations.api.filters import IntegrationFilter
from integrations.api.serializers import (
    ConnectionResultSerializer,
    IntegrationSerializer,
    PauseSerializer,
)
from integrations.models import Integration
from integrations.services import (
    IntegrationStateError,
    integration_pause,
    integration_resume,
    integration_test_connection,
)

EXAMPLES = [
    OpenApiExample(
        "A generic REST API",
        value={
            "provider": "generic_rest",
            "name": "CRM",
            "config": {
                "base_url": "https://crm.example.com/api/",
                "records_path": "data",
                "updated_at_field": "updated_at",
                "since_param": "updated_since",
                "pagination": {"style": "cursor", "page_size": 100},
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "An integration",
        value={
            "id": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
            "provider": "generic_rest",
            "name": "CRM",
            "config": {"base_url": "https://crm.example.com/api/"},
            "enabled": True,
            "status": "active",
            "status_reason": "",
            "created_at": "2025-01-31T09:00:00Z",
            "updated_at": "2025-01-31T09:00:00Z",
        },
        response_only=True,
    ),
]

STATE_CONFLICT = error_response(
    "The integration is not in a state that allows this (e.g. it needs re-authorisation).",
    error_example(
        "invalid_state",
        "'CRM' needs its credential connected again; resuming cannot fix that (reconnecting "
        "resumes it).",
        status=409,
    ),
)


@extend_schema_view(
    list=extend_schema(summary="List integrations"),
    create=extend_schema(summary="Connect a new integration", examples=EXAMPLES),
    retrieve=extend_schema(summary="Get an integration"),
    update=extend_schema(summary="Replace an integration"),
    partial_update=extend_schema(summary="Update an integration"),
    destroy=extend_schema(summary="Delete an integration (and everything synced through it)"),
)
@extend_schema(tags=["integrations"])
class IntegrationViewSet(TenantModelViewSet):
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter
    ordering_fields = ["name", "provider", "status", "created_at", "updated_at"]
    ordering = ["name"]

    @extend_schema(
        summary="Test the connection: one cheap authenticated call to the provider",
        request=None,
        responses={200: ConnectionResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, *args, **kwargs):
        result = integration_test_connection(integration=self.get_object())
        return Response(ConnectionResultSerializer(result.as_dict()).data)

    @extend_schema(
        summary="Pause syncs and pushes (work waits; nothing is lost)",
        request=PauseSerializer,
        responses={200: IntegrationSerializer, 409: STATE_CONFLICT},
    )
    @action(detail=True, methods=["post"], serializer_class=PauseSerializer)
    def pause(self, request, *args, **kwargs):
        integration = self.get_object()
        serializer = PauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            integration = integration_pause(
                integration=integration, reason=serializer.validated_data.get("reason", "")
            )
        except IntegrationStateError as exc:
            raise ApiError(str(exc), code=exc.code, status=409) from None
        return Response(
            IntegrationSerializer(integration, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Resume a paused integration",
        request=None,
        responses={200: IntegrationSerializer, 409: STATE_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        try:
            integration = integration_resume(integration=self.get_object())
        except IntegrationStateError as exc:
            raise ApiError(str(exc), code=exc.code, status=409) from None
        return Response(
            IntegrationSerializer(integration, context=self.get_serializer_context()).data
        )
