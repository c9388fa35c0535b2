"""Incidents, channels, subscriptions, deliveries and digests (docs/notifications.md).

A row with ``tenant`` empty belongs to the operator: platform incidents, operator channels and
operator-wide subscriptions. Tenants see (API) only rows of their own tenant.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone as dj_timezone

from castiel.events import CATALOGUE, Kind, Severity
from castiel.tenancy.models import Tenant
from integrations.models import Integration

SEVERITY_CHOICES = [(s.value, s.label) for s in Severity]
# Incident kinds only: the tenant application events (sync.completed …) never make incidents.
KIND_CHOICES = [(k.value, CATALOGUE[k].title) for k in Kind if CATALOGUE[k].incident]


class Incident(models.Model):
    """Events with one fingerprint, folded: open (or acknowledged) → resolved.

    At most one *live* (open or acknowledged) incident per fingerprint, enforced by a partial
    unique index: the fold is one ``INSERT … ON CONFLICT … DO UPDATE`` (notifications/incidents.py),
    so concurrent events on any number of processes make one incident.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    LIVE = (State.OPEN, State.ACKNOWLEDGED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    fingerprint = models.CharField(max_length=300)
    kind = models.CharField(max_length=64)
    severity = models.PositiveSmallIntegerField(choices=SEVERITY_CHOICES)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    subject_type = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=100)
    subject_label = models.CharField(max_length=300, blank=True, default="")
    # Not a foreign key: an event about an integration being deleted must still fold.
    integration_id = models.UUIDField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveBigIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(state__in=["open", "acknowledged"]),
                name="notifications_one_live_incident",
            )
        ]
        indexes = [
            models.Index(fields=["state", "last_seen_at"], name="notif_incident_state"),
            models.Index(fields=["tenant", "state"], name="notif_incident_tenant"),
            models.Index(fields=["resolved_at"], name="notif_incident_resolved"),
        ]

    def __str__(self) -> str:
        return f"{self.title}: {self.subject_label or self.subject_id}"

    @property
    def title(self) -> str:
        spec = CATALOGUE.get(self.kind)
        return spec.title if spec else self.kind

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE


class Channel(models.Model):
    """Where notifications go. Secret parts (a Slack or Teams webhook URL, a signing secret)
    live in the secret store under ``secret_name``; this row keeps a harmless hint only."""

    class Type(models.TextChoices):
        SLACK = "slack", "Slack (incoming webhook)"
        TEAMS = "teams", "Microsoft Teams (Workflows webhook)"
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"
        SLACK_BOT = "slack_bot", "Slack (bot of a connected Slack integration)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=Type.choices)
    enabled = models.BooleanField(default=True)
    # Signed webhooks: the receiving URL (not a secret). Slack/Teams: empty (the URL is one).
    url = models.CharField(max_length=2000, blank=True, default="")
    recipients = models.JSONField(default=list, blank=True, help_text="Email addresses.")
    # Slack bot: the connected Slack integration whose bot token posts, and the conversation.
    integration = models.ForeignKey(
        Integration,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Slack bot: the connected Slack integration that posts (its bot token).",
    )
    conversation = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Slack bot: the conversation (channel) ID to post to, e.g. C06K1M3P5R7.",
    )
    target_hint = models.CharField(max_length=300, blank=True, default="", editable=False)
    secret_name = models.CharField(max_length=127, blank=True, default="", editable=False)
    secret_version = models.CharField(max_length=64, blank=True, default="", editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=0, help_text="Messages per minute to this channel; 0 = the type's default."
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Health, written by the delivery worker only.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_failure_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="notifications_channel_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_version)


class Subscription(models.Model):
    """Which incidents go to which channel, and how: at once or in a digest."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DIGEST = "digest", "Digest"

    class Every(models.TextChoices):
        MINUTES = "minutes", "Every N minutes"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily at a time"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=200)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="subscriptions")
    enabled = models.BooleanField(default=True)
    event_kinds = models.JSONField(
        default=list, blank=True, help_text="Event kinds to include; empty = every kind."
    )
    min_severity = models.PositiveSmallIntegerField(
        choices=SEVERITY_CHOICES, default=Severity.WARNING.value
    )
    integrations = models.ManyToManyField(
        Integration,
        blank=True,
        related_name="+",
        help_text="Only incidents about these integrations; none = all.",
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.IMMEDIATE)
    notify_resolved = models.BooleanField(
        default=True, help_text="Immediate mode: also say when an incident resolves."
    )
    digest_every = models.CharField(
        max_length=16, choices=Every.choices, default=Every.DAILY, blank=True
    )
    digest_minutes = models.PositiveIntegerField(
        default=60, help_text="Digest every N minutes (with 'Every N minutes')."
    )
    digest_time = models.TimeField(
        null=True, blank=True, help_text="Daily digests: the local time to send at."
    )
    timezone = models.CharField(max_length=64, default="UTC")
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    critical_during_quiet = models.BooleanField(
        default=True, help_text="Critical incidents go through during quiet hours."
    )
    # Digest bookkeeping: the next digest covers [digest_from, next_digest_at).
    digest_from = models.DateTimeField(null=True, blank=True, editable=False)
    next_digest_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["mode", "next_digest_at"], name="notif_sub_digest_due")]

    def __str__(self) -> str:
        return self.name


class EventSubscription(models.Model):
    """Which tenant application events (``sync.completed`` …) go to which signed webhook.

    A model of its own rather than a :class:`Subscription` naming these event types: events
    are facts for a machine, not problems for a person — each one is delivered (no fold by
    fingerprint, no resolution), so severity, digests, quiet hours and resolution notices
    mean nothing for them, and an existing subscription whose empty ``event_kinds`` means
    "every kind" must not start receiving one message per sync run. Always a tenant's own,
    to one of its own signed-webhook channels (notifications/event_webhooks.py).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        related_name="event_subscriptions",
        help_text="One of the tenant's signed-webhook channels.",
    )
    enabled = models.BooleanField(default=True)
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types to send; empty = every type except webhook.received "
        "(which is sent only when named).",
    )
    integrations = models.ManyToManyField(
        Integration,
        blank=True,
        related_name="+",
        help_text="Only events about these integrations; none = all.",
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="notif_eventsub_tenant")]

    def __str__(self) -> str:
        return self.name


class Digest(models.Model):
    """One digest period of one subscription: built once (unique), sent by its delivery."""

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="digests")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    opened = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    still_open = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)

    class Meta:
        ordering = ["-period_end"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_end"], name="notifications_one_digest_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription} · {self.period_end:%Y-%m-%d %H:%M}"


class Delivery(models.Model):
    """One message to one channel: queued → sending → delivered, or dead after the last attempt.

    Deliveries of a channel go out in ``(queued_at, id)`` order, one at a time: the head of a
    channel's queue is the only one a worker may take (notifications/delivery.py).
    """

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert"
        REMINDER = "reminder", "Reminder"
        RESOLVED = "resolved", "Resolved"
        DIGEST = "digest", "Digest"
        TEST = "test", "Test"
        EVENT = "event", "Event (tenant application)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"
        CANCELLED = "cancelled", "Cancelled"

    PENDING = (Status.QUEUED, Status.SENDING)

    id = models.BigAutoField(primary_key=True)
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    digest = models.ForeignKey(
        Digest, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    queued_at = models.DateTimeField(default=dj_timezone.now)
    next_attempt_at = models.DateTimeField(default=dj_timezone.now)
    held_reason = models.CharField(max_length=200, blank=True, default="")
    lease_owner = models.CharField(max_length=64, blank=True, default="", editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    # The message's address at the channel when it has one (Slack bot: ``<channel>:<ts>``),
    # so the resolution can edit the alert it resolves.
    external_ref = models.CharField(max_length=200, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["channel", "status", "queued_at", "id"], name="notif_delivery_q"),
            models.Index(fields=["status", "next_attempt_at"], name="notif_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.channel_id} ({self.status})"
