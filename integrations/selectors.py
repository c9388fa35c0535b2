"""Reads of integrations shared by the operator commands."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError

from integrations.models import Integration


def integration_by_ref(ref: str, tenant=None):
    """An integration by id, or by name (names are unique per tenant: give --tenant when
    several tenants use the same one)."""
    queryset = Integration.objects.all()
    if tenant is not None:
        queryset = queryset.filter(tenant=tenant)
    try:
        found = list(queryset.filter(pk=uuid.UUID(ref)))
    except ValueError:
        found = list(queryset.filter(name=ref)[:2])
    if not found:
        raise CommandError(
            f"no integration {ref!r}" + (f" in tenant {tenant.slug}" if tenant else "")
        )
    if len(found) > 1:
        raise CommandError(f"several tenants have an integration named {ref!r}: add --tenant")
    return found[0]
