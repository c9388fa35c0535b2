"""Per-record change history: which run, webhook, API call or operator changed what."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class RecordChange(TenantOwned):
    """One change to one record's data, and what made it (the record's history).

    Written in the same transaction as the change itself (``syncing.records.history``): by the pull
    pipeline (source ``run``, or ``webhook`` when a webhook applied the record), by local
    changes through the outbox (``api``, ``admin``, ``rule``, ``service``; the source id is
    the outbound change that pushes it) and by conflict resolutions (``conflict``). Only field
    *names* are kept, not values: the record itself and its outbound changes hold the data,
    and history rows stay small enough to write one per changed record per page.

    Records may live in Cosmos DB, so the record is named by its stable id, not a foreign key.

    The same rows are the tenant's change feed (``GET /api/v1/records/changes/``,
    ``syncing.records.feed``): ``txid`` orders them so that a reader never passes a change
    that commits late (docs/sync.md, "Change feed").
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"
        RESTORED = "restored", "Restored"

    class Source(models.TextChoices):
        RUN = "run", "Sync run"
        WEBHOOK = "webhook", "Webhook event"
        API = "api", "API call"
        ADMIN = "admin", "Admin"
        RULE = "rule", "Rule"
        CONFLICT = "conflict", "Conflict resolution"
        SERVICE = "service", "Service call"
        PUSH = "push", "Push write-back (the provider's copy of a pushed change)"

    id = models.BigAutoField(primary_key=True)
    # Every index costs each synced record an insert: the per-record and per-source indexes
    # below serve every read, so the tenant key gets no index of its own.
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    record_id = models.UUIDField()
    integration_id = models.UUIDField()
    entity_type = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255, blank=True, default="")
    action = models.CharField(max_length=16, choices=Action.choices)
    fields = models.JSONField(
        default=list, blank=True, help_text="Fields whose value changed (empty for a create)."
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    source_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The run, webhook event, outbound change or conflict behind the change.",
    )
    actor = models.CharField(max_length=200, blank=True, default="")
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(
        default=0, help_text="The record's version this change produced (0: written before 0009)."
    )
    txid = models.BigIntegerField(
        default=0,
        help_text="Feed order key. PostgreSQL: the writing transaction's id "
        "(pg_current_xact_id), raised to the tenant's newest key; SQLite and rows written "
        "before 0009: 0 (then the id alone orders them).",
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "record change"
        indexes = [
            models.Index(fields=["record_id", "-at"], name="recordchange_record"),
            models.Index(fields=["source", "source_id"], name="recordchange_source"),
            # The change feed: one tenant's changes in feed order (and its newest key).
            models.Index(fields=["tenant", "txid", "id"], name="recordchange_feed"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type} {self.external_id} by {self.source}"


class ChangeFeedPruned(models.Model):
    """How far retention has pruned the change feed: the largest feed position
    (``txid``, ``id``) deleted so far (one row). A cursor below it may have missed a pruned
    change: the feed answers 410 and the reader resynchronises."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    txid = models.BigIntegerField(default=0)
    change_id = models.BigIntegerField(default=0)
    pruned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "change feed prune mark"

    def __str__(self) -> str:
        return f"pruned up to ({self.txid}, {self.change_id})"
