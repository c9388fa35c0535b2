from drf_spectacular.utils import extend_schema, extend_schema_view

from castiel.api.base import TenantModelViewSet
from integrations.api.serializers import IntegrationSerializer
from integrations.models import Integration


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
