"""The outbound outbox and its dead letters.

Every outbound change is a row (docs/architecture.md, "Push"): it says what to push, whether it
is due, who holds it and what happened to it.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class OutboundChange(TenantOwned):
    """One local change to a record waiting to be pushed (the transactional outbox).

    Written in the same transaction as the local change itself (``syncing.outbound.local_changes``),
    so a change that commits is never lost and a rolled-back one is never pushed. Changes to one
    record are pushed strictly in ``seq`` order (the record's version after the change:
    monotonic per record, because local edits are optimistic writes on the record); a change is
    only claimed when no earlier change of its record is still open. Pending updates that have
    not been claimed yet absorb later updates (``coalesced``).

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

    # Scheduling and the lease (see syncing/outbound/fencing.py and castiel/db/leases.py).
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
