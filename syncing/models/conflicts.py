"""Conflicts: both the local copy and the remote changed since the last sync."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned
from syncing.models.tasks import SyncRun, SyncTask


class Conflict(TenantOwned):
    """Both sides changed a record since the last sync and the task asked for manual review.

    The record is left untouched until an operator resolves the conflict (admin or API).
    Records may live in Cosmos DB, so the record is named by its stable id, not a foreign key.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    class Resolution(models.TextChoices):
        REMOTE = "remote", "Take the remote version"
        LOCAL = "local", "Keep the local version"
        MERGED = "merged", "Use merged data"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(SyncTask, on_delete=models.CASCADE, related_name="conflicts")
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL)
    record_id = models.UUIDField(db_index=True)
    entity_type = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    fields = models.JSONField(default=list, blank=True, help_text="Fields changed on both sides.")
    base_data = models.JSONField(default=dict, blank=True)
    local_data = models.JSONField(default=dict, blank=True)
    remote_data = models.JSONField(default=dict, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    resolved_data = models.JSONField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open conflict per record: a newer remote version updates it.
            models.UniqueConstraint(
                fields=["record_id"],
                condition=models.Q(status="open"),
                name="conflict_one_open_per_record",
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id} ({self.status})"
