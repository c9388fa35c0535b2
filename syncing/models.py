"""Sync state: tasks (what to pull, when, and where the last page left off), runs, conflicts,
the ORM record store's table, and the outbound outbox with its dead letters.

The database is the source of truth for every task: its lease (who runs it, until when), its
checkpoint (the cursor of the last page committed) and its schedule live on the row, so a lost
broker message or a killed worker never loses work (docs/architecture.md, "Pull"). The same
holds for every outbound change (docs/architecture.md, "Push"): its row says what to push,
whether it is due, who holds it and what happened to it.
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

    # Scheduling and the lease (a task never runs twice at once: see syncing/leases.py).
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

    # Outbound (push) policy for local changes to this entity type (syncing/outbound.py).
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


class Record(TenantOwned):
    """A synced entity in the ORM record store (see syncing/stores/).

    ``id`` is uuid5(tenant/integration/entity/external id), so the same remote object always
    lands on the same row, in either store. ``data`` is the local copy; ``base_data`` is the
    remote version as of the last sync (the ancestor for three-way merges); a record whose
    ``content_hash`` differs from ``base_hash`` was edited locally since.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="+"
    )
    entity_type = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    content_hash = models.CharField(max_length=64)
    base_data = models.JSONField(default=dict)
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


class OutboundChange(TenantOwned):
    """One local change to a record waiting to be pushed (the transactional outbox).

    Written in the same transaction as the local change itself (``syncing.outbox``), so a change
    that commits is never lost and a rolled-back one is never pushed. Changes to one record are
    pushed strictly in ``seq`` order (the record's version after the change: monotonic per
    record, because local edits are optimistic writes on the record); a change is only claimed
    when no earlier change of its record is still open. Pending updates that have not been
    claimed yet absorb later updates (``coalesced``).

    ``id`` is the idempotency key sent to the provider: stable across retries, restarts and
    replays of this change, so a retried create never creates twice (only the replay of a
    request the provider rejected outright takes a new one, see ``key_generation``).
    """

    class Operation(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        QUEUED = "queued", "Queued (claimed by a dispatcher)"
        RUNNING = "running", "Being pushed"
        SUCCEEDED = "succeeded", "Pushed"
        SKIPPED = "skipped", "Skipped (nothing to push, or the remote won)"
        SUPERSEDED = "superseded", "Superseded by a later local change"
        CONFLICT = "conflict", "Held for conflict review"
        DEAD = "dead", "Dead letter"
        DISCARDED = "discarded", "Discarded by an operator"

    MAX_ATTEMPT_LOG = 20  # newest entries kept in ``attempt_log``

    class Origin(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "Admin"
        RULE = "rule", "Rule (e.g. webhook-triggered)"
        CONFLICT = "conflict", "Conflict resolution"
        SERVICE = "service", "Service call"

    # Statuses that keep later changes of the same record waiting (order per record).
    OPEN = ("pending", "queued", "running", "conflict", "dead")
    FINAL = ("succeeded", "skipped", "superseded", "discarded")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="outbound_changes"
    )
    # The push policy is the entity's SyncTask's (integration + entity type), read when the
    # change is pushed, so a policy changed meanwhile applies.
    entity_type = models.CharField(max_length=100)
    record_id = models.UUIDField()
    external_id = models.CharField(max_length=255, blank=True, default="")
    operation = models.CharField(max_length=8, choices=Operation.choices)
    fields = models.JSONField(
        default=list, blank=True, help_text="Local fields changed (updates push only these)."
    )
    seq = models.PositiveBigIntegerField(help_text="Order within the record (its version).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True, default="")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.SERVICE)
    actor = models.CharField(max_length=200, blank=True, default="")
    coalesced = models.PositiveIntegerField(
        default=0, help_text="Later updates merged into this change before it was pushed."
    )
    # Skip the remote-version check once (a manual conflict resolved in favour of local).
    force = models.BooleanField(default=False)
    # Bumped when a dead letter the provider definitively rejected (a 4xx) is replayed: the
    # provider stored that answer under the old key and would only repeat it (Stripe does).
    key_generation = models.PositiveSmallIntegerField(default=0)

    # Scheduling and the lease (see syncing/outbound.py).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    # Results.
    attempts = models.PositiveSmallIntegerField(default=0)
    lost_attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Attempts whose worker stopped (crashed or was killed) before recording a "
        "result. Such a change is pushed alone from then on: it may be what stops workers.",
    )
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(
        null=True, blank=True, help_text="Time of the attempt that finished the change."
    )
    remote_id = models.CharField(max_length=255, blank=True, default="")
    remote_version = models.CharField(max_length=255, blank=True, default="")
    replayed = models.BooleanField(
        default=False, help_text="The provider answered from its idempotency-key store."
    )
    correlation_id = models.CharField(
        max_length=128, blank=True, default="", help_text="Of the request that made the change."
    )
    execution_id = models.CharField(
        max_length=64, blank=True, default="", help_text="Of the last push attempt."
    )
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_summary = models.TextField(blank=True, default="")
    attempt_log = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The dispatcher's "due" scan and the head-of-record check.
            models.Index(fields=["status", "next_attempt_at"], name="outbound_due"),
            # The fair claim: distinct tenants by skip scan, then each tenant's due heads.
            # Partial: a change leaves it when claimed, so pushes do not maintain it.
            models.Index(
                fields=["tenant", "next_attempt_at", "seq"],
                name="outbound_tenant_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["record_id", "seq"], name="outbound_record_seq"),
            models.Index(fields=["lease_expires_at"], name="outbound_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.entity_type} {self.external_id or self.record_id}"

    @property
    def idempotency_key(self) -> str:
        return str(self.id) if not self.key_generation else f"{self.id}.{self.key_generation}"


class DeadLetter(TenantOwned):
    """A change the push worker gave up on, with everything needed to understand and replay it.

    Created at once for non-retryable failures (validation errors, 404 on update, other 4xx)
    and for retryable ones past the attempt limit. The change itself stays ``dead`` (holding
    back later changes of its record, so order is kept) until it is replayed or discarded.
    Request and response are summaries: method, URL without its query string, the headers
    Castiel chose to keep (never credentials) and body excerpts with secret-looking keys
    redacted.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REPLAYED = "replayed", "Replayed"
        DISCARDED = "discarded", "Discarded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    change = models.ForeignKey(
        OutboundChange, on_delete=models.CASCADE, related_name="dead_letters"
    )
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="dead_letters"
    )
    entity_type = models.CharField(max_length=100)
    record_id = models.UUIDField(db_index=True)
    external_id = models.CharField(max_length=255, blank=True, default="")
    operation = models.CharField(max_length=8, choices=OutboundChange.Operation.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    retryable = models.BooleanField(
        default=False, help_text="The last error was retryable (the attempt limit was reached)."
    )
    error_code = models.CharField(max_length=64)
    error_message = models.TextField()
    request = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    attempt_log = models.JSONField(default=list, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    execution_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "tenant"], name="deadletter_open")]

    def __str__(self) -> str:
        return f"{self.operation} {self.entity_type} {self.external_id or self.record_id}"


class RecordChange(TenantOwned):
    """One change to one record's data, and what made it (the record's history).

    Written in the same transaction as the change itself (``syncing.history``): by the pull
    pipeline (source ``run``, or ``webhook`` when a webhook applied the record), by local
    changes through the outbox (``api``, ``admin``, ``rule``, ``service``; the source id is
    the outbound change that pushes it) and by conflict resolutions (``conflict``). Only field
    *names* are kept, not values: the record itself and its outbound changes hold the data,
    and history rows stay small enough to write one per changed record per page.

    Records may live in Cosmos DB, so the record is named by its stable id, not a foreign key.
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

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "record change"
        indexes = [
            models.Index(fields=["record_id", "-at"], name="recordchange_record"),
            models.Index(fields=["source", "source_id"], name="recordchange_source"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type} {self.external_id} by {self.source}"


class PushRule(TenantOwned):
    """When a webhook says a record of one integration changed, write a record of another.

    Evaluated by the ``push.evaluate_rules`` webhook action (``syncing/rules.py``): for an
    event of ``source_integration`` about ``source_entity_type`` whose type matches
    ``event_types``, the event's payload is mapped with ``field_mapping`` (target local field
    → source path, the sync tasks' mapping language), the target record whose
    ``match_field`` has the mapped value is updated — or created when none exists and
    ``create_missing`` is on — through the outbox, so the change is pushed to the target
    provider like any other local change (origin ``rule``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    source_integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="+"
    )
    source_entity_type = models.CharField(
        max_length=100, help_text="The entity type the webhook event names (e.g. contacts)."
    )
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Shell patterns of event types that fire the rule (contacts.*); empty = all.",
    )
    target_integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="+"
    )
    target_entity_type = models.CharField(max_length=100)
    field_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="Target field → source path (as in sync tasks); empty copies the payload.",
    )
    match_field = models.CharField(
        max_length=100,
        help_text="Target field whose value finds the record to update (e.g. email; "
        "strings compare case-insensitively), or external_id.",
    )
    create_missing = models.BooleanField(
        default=True, help_text="Create the target record when no record matches."
    )
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="pushrule_name")]
        indexes = [
            models.Index(
                fields=["source_integration", "source_entity_type"], name="pushrule_source"
            )
        ]

    def __str__(self) -> str:
        return self.name
