"""Base classes every tenant API endpoint uses, so isolation is a property of the framework.

* :class:`TenantScopedViewMixin` filters every queryset by the caller's tenant and stamps the
  tenant on created objects.
* :class:`TenantScopedSerializerMixin` scopes every writable related field, so a tenant can
  neither read nor reference another tenant's objects by id.
"""

from __future__ import annotations

from rest_framework import serializers, viewsets
from rest_framework.relations import ManyRelatedField, RelatedField

from castiel.tenancy.authentication import TenantPrincipal
from castiel.tenancy.scoping import owns_tenant_field, scope


def request_tenant(request):
    user = getattr(request, "user", None)
    return user.tenant if isinstance(user, TenantPrincipal) else None


class TenantScopedSerializerMixin:
    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        tenant = self.context.get("tenant") or (request_tenant(request) if request else None)
        for field in fields.values():
            relation = field.child_relation if isinstance(field, ManyRelatedField) else field
            if (
                isinstance(relation, RelatedField)
                and getattr(relation, "queryset", None) is not None
            ):
                relation.queryset = scope(relation.queryset, tenant)
        return fields


class TenantModelSerializer(TenantScopedSerializerMixin, serializers.ModelSerializer):
    pass


class TenantScopedViewMixin:
    def get_tenant(self):
        return request_tenant(self.request)

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return queryset.none()
        return scope(queryset, self.get_tenant())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["tenant"] = self.get_tenant()
        return context

    def perform_create(self, serializer):
        model = serializer.Meta.model
        extra = {"tenant": self.get_tenant()} if owns_tenant_field(model) else {}
        serializer.save(**extra)


class TenantModelViewSet(TenantScopedViewMixin, viewsets.ModelViewSet):
    pass


class TenantReadOnlyModelViewSet(TenantScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    pass
