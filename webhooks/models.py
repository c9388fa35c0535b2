"""Webhook registrations (where providers send) and events (the audit of every delivery)."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from castiel.tenancy.models import TenantOwned

# The freshness check of signed timestamps: always on, within this range of seconds. (0 used
# to switch it off silently; a replayed delivery of any age then verified.)
TOLERANCE_RANGE = (1, 3600)
DEFAULT_TOLERANCE = 300


class WebhookRegistration(TenantOwned):
    """One receiving endpoint, ``POST /webhooks/<id>/``: its scheme, secrets and rules.

    The id is a random UUID (122 bits) and is the only thing in the URL, so the URL is
    unguessable; the signature is still what authenticates a delivery. Signing secrets live
    in the secret store under ``secret_name``; this row keeps only the version references
    (the current one and, during a rotation window, the previous one with its expiry).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "integrations.Integration",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_registrations",
        help_text="The integration whose events arrive here (follow-up syncs run against it).",
    )
    name = models.CharField(max_length=200)
    scheme = models.CharField(
        max_length=32, help_text="Signature scheme slug (github, stripe, slack, generic_hmac …)."
    )
    scheme_config = models.JSONField(
        default=dict, blank=True, help_text="Scheme options (generic HMAC header, prefix …)."
    )
    parser = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="Event parser slug (github, stripe, generic); empty = the scheme's default.",
    )
    parser_config = models.JSONField(
        default=dict, blank=True, help_text="Parser options (JSON paths for the generic parser)."
    )
    secret_name = models.CharField(max_length=127, editable=False)
    secret_version = models.CharField(max_length=64, blank=True, default="", editable=False)
    previous_secret_version = models.CharField(
        max_length=64, blank=True, default="", editable=False
    )
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    timestamp_tolerance = models.PositiveIntegerField(
        default=DEFAULT_TOLERANCE,
        validators=[
            MinValueValidator(TOLERANCE_RANGE[0]),
            MaxValueValidator(TOLERANCE_RANGE[1]),
        ],
        help_text=(
            "Seconds a signed timestamp may differ from now (schemes with one): "
            f"{TOLERANCE_RANGE[0]} to {TOLERANCE_RANGE[1]}. The check cannot be turned off."
        ),
    )
    dedupe_rule = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'Parts of the dedupe key: "header:<Name>" or "body:<json.path>"; several parts make '
            "a composite key. Empty = the scheme's default (e.g. X-GitHub-Delivery)."
        ),
    )
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types to process (shell patterns such as customer.*); empty = all.",
    )
    routes = models.JSONField(
        default=dict,
        blank=True,
        help_text='Routing overrides: {"<event type pattern>": ["<action>", …]}.',
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Deliveries accepted per minute; empty = the default."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="webhook_registration_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scheme})"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_version)

    def clean(self):
        from webhooks.validation import validate_registration

        validate_registration(self)


class WebhookEvent(TenantOwned):
    """One delivery to a registration, whatever happened to it (the audit trail).

    ``outcome`` says what the receiver did (accepted, duplicate, rejected, handshake) and
    ``reason`` why, as a stable code. Accepted events carry the processing ``status``
    (received → processing → processed / ignored / failed, with retrying in between).
    The body is kept as the raw bytes that were verified, never re-serialised.
    """

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected"
        HANDSHAKE = "handshake", "Handshake"

    class Status(models.TextChoices):
        NONE = "", "—"
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        RETRYING = "retrying", "Retrying"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    PENDING_STATUSES = (Status.RECEIVED, Status.PROCESSING, Status.RETRYING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Every index costs each delivery an insert on the hot path: the tenant and registration
    # foreign keys are served by the composite indexes below (their leading column), so they
    # get no single-column index of their own.
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    registration = models.ForeignKey(
        WebhookRegistration, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=64, help_text="Stable reason code (ok, bad_signature …).")
    http_status = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, blank=True, default="")
    dedupe_key = models.CharField(max_length=255, blank=True, default="")
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicates",
        db_index=False,  # a partial index below: almost every row has none
    )

    # The request as received (headers redacted; the body as raw bytes).
    method = models.CharField(max_length=10)
    query_string = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict)
    body = models.BinaryField(default=b"")
    body_size = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=200, blank=True, default="")
    remote_addr = models.CharField(max_length=64, blank=True, default="")
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    matched_secret = models.CharField(
        max_length=16, blank=True, default="", help_text="Which secret verified it."
    )
    received_at = models.DateTimeField(default=timezone.now)
    receive_ms = models.FloatField(null=True, blank=True, help_text="Receipt time until stored.")

    # Filled by processing. The receipt's INSERT leaves these columns out
    # (webhooks/receipt_insert.py), so each non-null one has its default in the database too
    # (``db_default``, the same value as ``default``).
    provider = models.CharField(max_length=64, blank=True, default="", db_default="")
    event_type = models.CharField(max_length=200, blank=True, default="", db_default="")
    entity_type = models.CharField(max_length=100, blank=True, default="", db_default="")
    external_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    processing_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", db_default="")
    actions = models.JSONField(default=list, blank=True, db_default=[])
    replay_count = models.PositiveIntegerField(default=0, db_default=0)
    last_replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # The dedupe guarantee: one accepted event per key and registration. Duplicates
            # and rejections are audit rows outside the constraint.
            models.UniqueConstraint(
                fields=["registration", "dedupe_key"],
                condition=Q(outcome="accepted"),
                name="webhook_event_dedupe",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-received_at"], name="webhook_event_tenant_recv"),
            models.Index(fields=["registration", "-received_at"], name="webhook_event_reg_recv"),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="webhook_event_due",
                condition=Q(status__in=["received", "processing", "retrying"]),
            ),
            models.Index(
                fields=["duplicate_of"],
                name="webhook_event_duplicate_of",
                condition=Q(duplicate_of__isnull=False),
            ),
            models.Index(fields=["received_at"], name="webhook_event_received"),
            models.Index(fields=["tenant", "external_id"], name="webhook_event_external"),
        ]

    def __str__(self) -> str:
        label = self.event_type or self.reason
        return f"{self.registration_id} {self.outcome} {label}"

    @property
    def body_text(self) -> str:
        return bytes(self.body or b"").decode("utf-8", errors="replace")


class WebhookBodySeen(models.Model):
    """A signed body a registration accepted, for schemes that sign nothing else
    (``Scheme.dedupe_signed_body``: GitHub, whose delivery id is not signed).

    One row per registration and body hash, unique, written in the same transaction as the
    accepted event it points to: a second delivery of the same bytes under a new delivery id
    meets the row and is answered as a duplicate of that event, also when both arrive at
    once (the unique index serialises them). The window is the retention: the row goes with
    its event when the event is purged, and a row older than the retention (its event still
    pending) is taken over by the next accepted delivery of the same body.
    """

    id = models.BigAutoField(primary_key=True)
    registration = models.ForeignKey(
        WebhookRegistration, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    body_sha256 = models.CharField(max_length=64)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "body_sha256"], name="webhook_body_seen_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.registration_id} sha256:{self.body_sha256[:12]}…"
