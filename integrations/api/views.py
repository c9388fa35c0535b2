from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from castiel.api.base import TenantModelViewSet
from castiel.api.errors import ApiError
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


@extend_schema_view(
    list=extend_schema(summary="List integrations"),
    create=extend_schema(summary="Connect a new integration"),
    retrieve=extend_schema(summary="Get an integration"),
    update=extend_schema(summary="Replace an integration"),
    partial_update=extend_schema(summary="Update an integration"),
    destroy=extend_schema(summary="Delete an integration"),
)
@extend_schema(tags=["integrations"])
class IntegrationViewSet(TenantModelViewSet):
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    filterset_fields = ["provider", "enabled", "status"]

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
        responses={200: IntegrationSerializer},
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
        summary="Resume a paused integration", request=None, responses={200: IntegrationSerializer}
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
