from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    """A company using Castiel. Every tenant-owned row points at one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def active_tenant_ids():
    """Active tenants' ids, for a claim's ``tenant_id__in``.

    A filter on the claimed row's own ``tenant_id`` keeps a claim a plain conditional UPDATE.
    Filtering through the relation (``tenant__is_active``) makes Django write ``UPDATE …
    WHERE id IN (SELECT … JOIN …)``, and PostgreSQL does not re-check such a subquery after
    waiting on a concurrent claim's row lock: two workers would both win one row.
    """
    return Tenant.objects.filter(is_active=True).values("id")


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A tenant API key. Only a SHA-256 digest of the key is stored; the prefix is visible.

    Keys are 256-bit random tokens, so a fast digest is the right tool (a slow password hash
    protects low-entropy secrets and would put a KDF on every API request).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class TenantOwnedQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        return self.filter(tenant=tenant)


class TenantOwned(models.Model):
    """Base for models owned directly by a tenant (``tenant`` column, indexed)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        abstract = True
