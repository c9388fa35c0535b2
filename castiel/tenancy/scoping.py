"""One mechanism that scopes querysets to a tenant.

A model is tenant-owned either through a ``tenant`` field or by declaring ``TENANT_PATH``
(a lookup such as ``"integration__tenant"``). Anything else cannot be scoped and fails loudly,
so a new endpoint over an unscoped model is a start-up/test error, not a data leak.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Model, QuerySet


def tenant_path(model: type[Model]) -> str:
    path = getattr(model, "TENANT_PATH", None)
    if path:
        return path
    try:
        model._meta.get_field("tenant")
    except FieldDoesNotExist:
        raise ImproperlyConfigured(
            f"{model.__name__} cannot be tenant-scoped: add a `tenant` field or TENANT_PATH"
        ) from None
    return "tenant"


def scope(queryset: QuerySet, tenant) -> QuerySet:
    """``queryset`` restricted to rows owned by ``tenant`` (nothing when tenant is None)."""
    if tenant is None:
        return queryset.none()
    return queryset.filter(**{tenant_path(queryset.model): tenant})


def owns_tenant_field(model: type[Model]) -> bool:
    try:
        model._meta.get_field("tenant")
    except FieldDoesNotExist:
        return False
    return True
