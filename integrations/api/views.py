from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view

from castiel.api.base import TenantModelViewSet
from integrations.api.filters import IntegrationFilter
from integrations.api.serializers import IntegrationSerializer
from integrations.models import Integration

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
