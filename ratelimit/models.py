from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from castiel.tenancy.models import TenantOwned
from integrations.models import Integration
from ratelimit.policy import MAX_WINDOW_SECONDS


class RateLimitOverride(TenantOwned):
    """An operator's limit replacing a default, for one integration or a whole tenant.

    Precedence (most specific wins): an override for the integration, then a tenant-wide
    override (``integration`` empty), then the default (provider catalogue for the
    integration level, settings for the operation and tenant levels).

    Who set it matters: an operator (the admin) may set any limit; a tenant (the API) may
    only lower one — never the tenant level, which protects the other tenants, and below
    the provider's documented limit for the others. A tenant's override that is not lower
    is not applied (``selectors.resolve_policy``).
    """

    class SetBy(models.TextChoices):
        OPERATOR = "operator", "Operator (admin)"
        TENANT = "tenant", "Tenant (API)"

    class Level(models.TextChoices):
        TENANT = "tenant", "Tenant (all integrations)"
        INTEGRATION = "integration", "Integration (the provider's limit)"
        OPERATION = "operation", "Operation (fetch / create / update / delete …)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        Integration,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rate_limit_overrides",
        help_text="Leave empty to apply to every integration of the tenant.",
    )
    level = models.CharField(max_length=16, choices=Level.choices)
    operation = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Operation-level only: fetch, create, update, delete or an adapter's own.",
    )
    limit = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    window_seconds = models.FloatField(
        validators=[MinValueValidator(1.0), MaxValueValidator(MAX_WINDOW_SECONDS)],
        help_text="Sliding window length, from 1 second to 24 hours.",
    )
    note = models.CharField(max_length=200, blank=True, default="")
    set_by = models.CharField(
        max_length=16,
        choices=SetBy.choices,
        default=SetBy.OPERATOR,
        editable=False,
        help_text="Operator overrides may raise a limit; a tenant's only lower one.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "level", "operation"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "integration", "level", "operation"],
                condition=Q(integration__isnull=False),
                name="ratelimit_override_unique_for_integration",
            ),
            models.UniqueConstraint(
                fields=["tenant", "level", "operation"],
                condition=Q(integration__isnull=True),
                name="ratelimit_override_unique_for_tenant",
            ),
        ]

    def __str__(self) -> str:
        what = self.level + (f":{self.operation}" if self.operation else "")
        scope = self.integration.name if self.integration_id else "all integrations"
        return f"{what} {self.limit}/{self.window_seconds:g}s ({scope})"

    def clean(self):
        errors = {}
        if self.level == self.Level.TENANT and self.integration_id:
            errors["integration"] = "A tenant-level limit applies to the whole tenant."
        if self.level == self.Level.OPERATION and not self.operation:
            errors["operation"] = "Name the operation this limit applies to."
        if self.level != self.Level.OPERATION and self.operation:
            errors["operation"] = "Only operation-level limits name an operation."
        if self.integration_id and self.tenant_id and self.integration.tenant_id != self.tenant_id:
            errors["integration"] = "The integration belongs to another tenant."
        if errors:
            raise ValidationError(errors)


class LimiterCounter(models.Model):
    """Storage of the database backend: one row per counter key (what a Redis hash is for the
    Redis backend) — bucket counts of a level, or the adaptive state of an integration."""

    key = models.CharField(max_length=255, primary_key=True)
    data = models.JSONField(default=dict)
    # Epoch seconds after which the row holds nothing live (the cleanup task deletes it).
    expires_at = models.FloatField(db_index=True, default=0)

    class Meta:
        verbose_name = "limiter counter"

    def __str__(self) -> str:
        return self.key


class IntegrationUsage(Integration):
    """Integrations seen through their rate limits: the admin's usage and headroom page."""

    class Meta:
        proxy = True
        verbose_name = "rate-limit usage"
        verbose_name_plural = "rate-limit usage"
