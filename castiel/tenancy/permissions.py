from rest_framework.permissions import BasePermission

from castiel.tenancy.authentication import TenantPrincipal


class IsTenant(BasePermission):
    """The request was authenticated with a tenant API key."""

    message = "Authentication with a tenant API key is required."

    def has_permission(self, request, view):
        return isinstance(request.user, TenantPrincipal)
