import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view

from castiel.api.base import TenantModelViewSet, TenantReadOnlyModelViewSet
from castiel.api.errors import ApiError
from castiel.api.filters import id_filter
from castiel.api.schema import error_example, error_response
from integrations.models import Integration
from ratelimit import services
from ratelimit.api.serializers import (
    IntegrationRateLimitSerializer,
    RateLimitOverrideSerializer,
)
from ratelimit.models import RateLimitOverride


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


OPERATOR_ONLY = error_response(
    "Only an operator (the admin) may do this: set, change or delete a tenant-level limit "
    "(it protects the other tenants), or change or delete an override an operator set.",
    error_example(
        "tenant_limit_operator_only",
        "The tenant-level limit protects the other tenants: only an operator sets it, "
        "in the admin.",
        status=403,
    ),
    error_example(
        "operator_override",
        "An operator set this override: it is changed in the admin, not through the API.",
        status=403,
    ),
)
NOT_LOWER = error_response(
    "Invalid input (`invalid`, with field errors), or a limit above the provider's documented "
    "one (`limit_above_provider_limit`): through the API a limit can only be lowered.",
    error_example("invalid", "Invalid input.", {"limit": ["This field is required."]}, status=400),
    error_example(
        "limit_above_provider_limit",
        "400 per 60s is above the documented limit of generic_rest (300 per 60s) for "
        "integration 'CRM': through the API a limit can only be lowered.",
        {
            "integration": "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10",
            "provider": "generic_rest",
            "provider_limit": {"limit": 300, "window_seconds": 60.0},
        },
        status=400,
    ),
)


def _refused(exc: services.OverrideRefused) -> ApiError:
    return ApiError(str(exc), code=exc.code, status=exc.status, details=exc.details)


@extend_schema_view(
    list=extend_schema(summary="List rate-limit overrides"),
    create=extend_schema(
        summary="Lower a rate limit",
        responses={201: RateLimitOverrideSerializer, 400: NOT_LOWER, 403: OPERATOR_ONLY},
    ),
    retrieve=extend_schema(summary="Get a rate-limit override"),
    update=extend_schema(
        summary="Replace a rate-limit override",
        responses={200: RateLimitOverrideSerializer, 400: NOT_LOWER, 403: OPERATOR_ONLY},
    ),
    partial_update=extend_schema(
        summary="Update a rate-limit override",
        responses={200: RateLimitOverrideSerializer, 400: NOT_LOWER, 403: OPERATOR_ONLY},
    ),
    destroy=extend_schema(
        summary="Delete a rate-limit override (back to the default)",
        responses={204: None, 403: OPERATOR_ONLY},
    ),
)
@extend_schema(tags=["rate limits"])
class RateLimitOverrideViewSet(TenantModelViewSet):
    """A tenant's own overrides: they may only lower a limit below the provider's documented
    one. The tenant level, and every override an operator set, are the admin's
    (``set_by``)."""

    queryset = RateLimitOverride.objects.select_related("integration")
    serializer_class = RateLimitOverrideSerializer
    filterset_class = RateLimitOverrideFilter
    ordering_fields = ["level", "operation", "created_at"]
    ordering = ["level", "operation"]

    def _check_limit(self, serializer, instance=None):
        data = serializer.validated_data

        def current(name):
            return data[name] if name in data else getattr(instance, name, None)

        try:
            services.override_check_tenant_limit(
                tenant=self.get_tenant(),
                level=current("level"),
                integration=current("integration"),
                limit=current("limit"),
                window_seconds=current("window_seconds"),
            )
        except services.OverrideRefused as exc:
            raise _refused(exc) from None

    def _check_change(self, instance):
        try:
            services.override_check_tenant_change(override=instance)
        except services.OverrideRefused as exc:
            raise _refused(exc) from None

    def _check_level(self, data):
        # Before validation: asking for the tenant level is refused as such, whatever else
        # the body gets wrong (an operator's tenant-level override may already exist, say).
        if isinstance(data, dict) and data.get("level") == RateLimitOverride.Level.TENANT:
            raise _refused(services.tenant_level_refused())

    def create(self, request, *args, **kwargs):
        self._check_level(request.data)
        return super().create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        self._check_change(self.get_object())
        self._check_level(request.data)
        return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        self._check_change(self.get_object())
        return super().destroy(request, *args, **kwargs)

    def perform_create(self, serializer):
        self._check_limit(serializer)
        serializer.save(tenant=self.get_tenant(), set_by=RateLimitOverride.SetBy.TENANT)

    def perform_update(self, serializer):
        self._check_limit(serializer, serializer.instance)
        serializer.save()
