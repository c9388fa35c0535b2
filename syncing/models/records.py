"""The ORM record store's tables: one row per synced entity and its alternate keys."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class Record(TenantOwned):
    """A synced entity in the ORM record store (see syncing/stores/).

    ``id`` is uuid5(tenant/integration/entity/external id), so the same remote object always
    lands on the same row, in either store. ``data`` is the local copy; ``base_data`` is the
    remote version as of the last sync (the ancestor for three-way merges); a record whose
    ``content_hash`` differs from ``base_hash`` was edited locally since. When they are equal,
    ``base_data`` is NULL rather than a second copy of ``data`` (the record store reads it
    back as ``data``).
    """

    id = models.UUIDField(primary_key=True, editable=False)
    # Every index costs each synced record an insert. The composite indexes below start with
    # the tenant and with the integration, so they serve those foreign keys' lookups (and
    # the cascades of a deleted tenant or integration): neither gets an index of its own.
    # Nor does the tenant get a database constraint: a record's tenant is its integration's,
    # whose own key the database checks — a second check per inserted row (at commit,
    # ~3.4 µs each) would only say the same again.
    tenant = models.ForeignKey(
        "tenancy.Tenant",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    entity_type = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    content_hash = models.CharField(max_length=64)
    base_data = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text="The remote version as of the last sync; empty when it is the same as the "
        "data (no local edit since: most records), so a record is not stored twice.",
    )
    base_hash = models.CharField(max_length=64, blank=True, default="")
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    remote_version = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The provider's version of the record (ETag, version number or updated-at).",
    )
    local_updated_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_pushed_hash = models.CharField(max_length=64, blank=True, default="")
    match_keys = models.JSONField(default=list, blank=True)
    seen_generation = models.PositiveBigIntegerField(default=0)
    synced_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["entity_type", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "entity_type", "external_id"], name="record_unique_external"
            )
        ]
        indexes = [models.Index(fields=["tenant", "entity_type"], name="record_tenant_entity")]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id}"


class RecordKey(models.Model):
    """Dedup keys of ORM records (composite / normalised / content-hash strategies).

    A separate indexed table so one query finds every stored record matching a page's keys.
    """

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="keys")
    integration_id = models.UUIDField()
    entity_type = models.CharField(max_length=100)
    key = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "key"], name="recordkey_unique"),
        ]
        indexes = [
            models.Index(fields=["integration_id", "entity_type", "key"], name="recordkey_lookup")
        ]

    def __str__(self) -> str:
        return self.key
