"""Sync tasks (what to pull, when, and where the last page left off) and their runs.

The database is the source of truth for every task: its lease (who runs it, until when), its
checkpoint (the cursor of the last page committed) and its schedule live on the row, so a lost
broker message or a killed worker never loses work (docs/architecture.md, "Pull").
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class DedupStrategy(models.TextChoices):
    EXTERNAL_ID = "external_id", "External id"
    COMPOSITE_KEY = "composite_key", "Composite key"
    NORMALIZED_MATCH = "normalized_match", "Normalised match (email, phone, domain)"
    CONTENT_HASH = "content_hash", "Content hash"


class ConflictStrategy(models.TextChoices):
    REMOTE_WINS = "remote_wins", "Remote wins"
    LOCAL_WINS = "local_wins", "Local wins"
    LAST_WRITE_WINS = "last_write_wins", "Last write wins"
    FIELD_MERGE = "field_merge", "Three-way field merge"
    MANUAL = "manual", "Manual review"


class PushConflictStrategy(models.TextChoices):
    """What the push worker does when the remote changed since the last sync."""

    LOCAL_WINS = "local_wins", "Local wins (push anyway)"
    REMOTE_WINS = "remote_wins", "Remote wins (drop the local change, take the remote)"
    MANUAL = "manual", "Manual review (open a conflict, hold the change)"


class SyncTask(TenantOwned):
    """One entity type of one integration, pulled on a schedule.

    ``state`` survives between runs (the incremental watermark); ``checkpoint`` is the cursor
    of the run in progress, written in the same transaction as each page's records, so a new
    run after a crash starts exactly where the last committed page ended.
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (pull)"

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental"
        FULL = "full", "Full refresh"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        FAILED = "failed", "Failed (will retry)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="sync_tasks"
    )
    name = models.CharField(max_length=200, blank=True, default="")
    entity_type = models.CharField(max_length=100)
    direction = models.CharField(max_length=16, choices=Direction.choices, default="inbound")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.INCREMENTAL)
    interval_seconds = models.PositiveIntegerField(
        default=3600, help_text="Run every N seconds (ignored when a cron expression is set)."
    )
    cron = models.CharField(max_length=100, blank=True, default="")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IDLE)
    status_reason = models.TextField(blank=True, default="")

    # Scheduling and the lease (a task never runs twice at once: see syncing/inbound/leases.py).
    next_run_at = models.DateTimeField(default=timezone.now)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    run_requested = models.BooleanField(
        default=False, help_text="'Run now' was asked while the task was busy."
    )

    state = models.JSONField(default=dict, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    full_refresh_generation = models.PositiveBigIntegerField(default=0)

    # Per-task pipeline configuration.
    field_mapping = models.JSONField(default=dict, blank=True)
    dedup_strategy = models.CharField(
        max_length=32, choices=DedupStrategy.choices, default=DedupStrategy.EXTERNAL_ID
    )
    dedup_config = models.JSONField(default=dict, blank=True)
    conflict_strategy = models.CharField(
        max_length=32, choices=ConflictStrategy.choices, default=ConflictStrategy.REMOTE_WINS
    )
    conflict_config = models.JSONField(default=dict, blank=True)

    # Outbound (push) policy for local changes to this entity type (syncing/outbound/).
    push_conflict_strategy = models.CharField(
        max_length=32,
        choices=PushConflictStrategy.choices,
        default=PushConflictStrategy.LOCAL_WINS,
        help_text="When the remote changed since the last sync: push anyway, take the remote, "
        "or hold the change for review.",
    )
    push_max_attempts = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Attempts before a retryable push failure becomes a dead letter "
        "(empty: CASTIEL_OUTBOUND_MAX_ATTEMPTS).",
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "integration", "entity_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "entity_type", "direction"], name="synctask_unique_entity"
            )
        ]
        indexes = [
            # The scheduler's "due and free" scan.
            models.Index(fields=["enabled", "next_run_at"], name="synctask_due"),
            models.Index(fields=["lease_expires_at"], name="synctask_lease"),
            # A woken worker finds the tasks its claimed batch still has waiting.
            models.Index(
                fields=["lease_owner"],
                name="synctask_claimed",
                condition=models.Q(status="queued"),
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.integration.name}: {self.entity_type}"

    def save(self, *args, **kwargs):
        if self.integration_id and not self.tenant_id:
            self.tenant_id = self.integration.tenant_id
        super().save(*args, **kwargs)


class SyncRun(TenantOwned):
    """One execution of a task (one worker's hold of the lease), updated per page."""

    # What a page's records came to (the pipeline counts these per page) ...
    OUTCOME_COUNTERS = (
        "fetched",
        "created",
        "updated",
        "unchanged",
        "deleted",
        "duplicates",
        "conflicts",
        "errors",
        "echoes",
    )
    # ... and every counter of a run, as the admin and the API show them.
    COUNTERS = ("pages", *OUTCOME_COUNTERS, "retries", "waited_seconds", "dedup_rules")

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DEFERRED = "deferred", "Deferred (continues from its checkpoint)"
        LOST = "lost", "Lost (worker died; resumed from its checkpoint)"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Run now"
        RESUME = "resume", "Resume"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(SyncTask, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    mode = models.CharField(max_length=16, choices=SyncTask.Mode.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default="schedule")
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(default=timezone.now)

    pages = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    echoes = models.PositiveIntegerField(
        default=0, help_text="Records that came back exactly as Castiel pushed them (no echo)."
    )
    retries = models.PositiveIntegerField(default=0)
    waited_seconds = models.FloatField(default=0.0)
    dedup_rules = models.JSONField(
        default=dict, blank=True, help_text="How many records each dedup rule matched."
    )

    execution_id = models.CharField(max_length=64, blank=True, default="")
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_summary = models.TextField(blank=True, default="")
    retry_log = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["task", "-started_at"], name="syncrun_task_recent"),
            # The operations dashboard's "last 24 hours" aggregates.
            models.Index(fields=["started_at"], name="syncrun_started"),
        ]

    def __str__(self) -> str:
        return f"{self.task} @ {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        end = self.finished_at or self.heartbeat_at
        if end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def records_per_second(self) -> float | None:
        duration = self.duration_seconds
        if not duration:
            return None
        return round(self.fetched / duration, 1)
