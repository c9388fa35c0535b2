from drf_spectacular.utils import extend_schema
from rest_framework.generics import RetrieveAPIView

from castiel.api.base import request_tenant
from castiel.tenancy.api.serializers import TenantSerializer


@extend_schema(summary="The caller's tenant", tags=["tenant"])
class TenantView(RetrieveAPIView):
    """The tenant that owns the API key used for this request."""

    serializer_class = TenantSerializer
    tenant_isolation = "self"  # returns only the caller's own tenant, by construction

    def get_object(self):
        return request_tenant(self.request)
