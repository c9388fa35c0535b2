"""Sandbox state: accounts (each a separate fake SaaS tenant), objects, requests, webhooks."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SandboxAccount(models.Model):
    """One simulated SaaS account, with its own data, limits, faults and webhook target.

    ``faults`` (all optional)::

        {"latency_ms": 0, "error_rate": 0.0, "rate_limit_rate": 0.0, "timeout_rate": 0.0,
         "malformed_rate": 0.0, "retry_after": 1, "timeout_seconds": 10, "seed": 0,
         "script": ["429", "ok", "500", "timeout", "malformed"]}

    ``script`` is consumed one entry per request before the random rates apply, so tests
    can place a fault exactly; the random faults are seeded by (seed, request number).
    Writes only: ``"methods": ["POST", "PATCH", "PUT", "DELETE"]`` limits faults (script and
    rates) to those methods. ``lost_rate`` (script ``"lost"``): the write is applied, then the
    answer is lost — a 504 after ``timeout_seconds`` — the case idempotency keys exist for.
    """

    class Scheme(models.TextChoices):
        STANDARD = "standard", "Standard Webhooks (webhook-signature)"
        GITHUB = "github", "GitHub (X-Hub-Signature-256)"

    slug = models.SlugField(max_length=100, unique=True)
    api_key = models.CharField(
        max_length=200, blank=True, default="", help_text="If set, requests need this bearer."
    )
    rate_limit = models.PositiveIntegerField(default=0, help_text="Requests per window; 0 = off.")
    rate_window_seconds = models.PositiveIntegerField(default=60)
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)
    request_count = models.PositiveBigIntegerField(default=0)
    faults = models.JSONField(default=dict, blank=True)
    webhook_url = models.URLField(blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="")
    webhook_scheme = models.CharField(
        max_length=16, choices=Scheme.choices, default=Scheme.STANDARD
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class SandboxObject(models.Model):
    account = models.ForeignKey(
        SandboxAccount, on_delete=models.CASCADE, related_name="sandbox_objects"
    )
    collection = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "collection", "id"], name="sandbox_obj_by_id"),
            models.Index(
                fields=["account", "collection", "updated_at", "id"], name="sandbox_obj_by_upd"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.collection}/{self.pk}"


class SandboxIdempotencyKey(models.Model):
    """A write's ``Idempotency-Key`` and the answer it got (Stripe's semantics).

    The same key again with the same method, path and body replays the stored answer (with
    ``Idempotent-Replayed: true``); with other parameters it is a 400 ``idempotency_error``.
    Stored in the same transaction as the write, so an applied write always has its key.
    """

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    body_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="sandbox_idempotency_key")
        ]

    def __str__(self) -> str:
        return self.key


class SandboxRequest(models.Model):
    """Every request the sandbox answered (what tests and the demo inspect)."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="requests")
    number = models.PositiveBigIntegerField()
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    query = models.CharField(max_length=1000, blank=True, default="")
    status = models.PositiveSmallIntegerField()
    fault = models.CharField(max_length=32, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    replayed = models.BooleanField(
        default=False, help_text="Answered from the idempotency-key store (nothing applied)."
    )
    applied = models.BooleanField(default=False, help_text="A write that changed an object.")
    at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.method} {self.path} → {self.status}"


class SandboxDelivery(models.Model):
    """A signed webhook the sandbox sent (or is about to send) for a change."""

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=100)
    url = models.URLField()
    body = models.TextField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "sandbox deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
