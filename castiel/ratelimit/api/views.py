import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet
from castiel.api.filters import id_filter
from castiel.ratelimit.api.serializers import (
    IntegrationRateLimitSerializer,
    RateLimitOverrideSerializer,
)
from castiel.ratelimit.models import RateLimitOverride
from integrations.models import Integration


@extend_schema_view(
    list=extend_schema(summary="Rate-limit usage and headroom of every integration"),
    retrieve=extend_schema(summary="Rate-limit usage and headroom of one integration"),
)
@extend_schema(tags=["rate limits"])
class RateLimitUsageViewSet(TenantReadOnlyModelViewSet):
    """Current usage per level (tenant, integration, each operation) — read live from the
    limiter's counters."""

    queryset = Integration.objects.all()
    serializer_class = IntegrationRateLimitSerializer
    filterset_fields = ["provider"]
    ordering_fields = ["name", "provider"]
    ordering = ["name"]


class RateLimitOverrideFilter(django_filters.FilterSet):
    integration = id_filter("integration_id", "Integration id.")

    class Meta:
        model = RateLimitOverride
        fields = ["level", "operation"]


@extend_schema_view(
    list=extend_schema(summary="List rate-limit overrides"),
    create=extend_schema(summary="Override a rate limit"),
    retrieve=extend_schema(summary="Get a rate-limit override"),
    update=extend_schema(summary="Replace a rate-limit override"),
    partial_update=extend_schema(summary="Update a rate-limit override"),
    destroy=extend_schema(summary="Delete a rate-limit override (back to the default)"),
)
@extend_schema(tags=["rate limits"])
class RateLimitOverrideViewSet(TenantModelViewSet):
    queryset = RateLimitOverride.objects.select_related("integration")
    serializer_class = RateLimitOverrideSerializer
    filterset_class = RateLimitOverrideFilter
    ordering_fields = ["level", "operation", "created_at"]
    ordering = ["level", "operation"]
