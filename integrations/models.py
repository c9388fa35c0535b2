from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class Integration(TenantOwned):
    """One tenant's connection to one external system (a provider from the catalogue)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        REAUTH_REQUIRED = "reauth_required", "Re-authorisation required"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="integration_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    @property
    def provider_info(self):
        from integrations.providers import registry

        return registry.get(self.provider)

    @property
    def is_operational(self) -> bool:
        """Syncs and pushes may run (enabled and not waiting for re-authorisation)."""
        return self.enabled and self.status == self.Status.ACTIVE

    def clean(self):
        from integrations.providers import registry

        try:
            provider = registry.get(self.provider)
        except registry.UnknownProvider:
            raise ValidationError({"provider": f"Unknown provider {self.provider!r}."}) from None
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "The configuration must be a JSON object."})
        errors = provider.validate_config(self.config or {})
        if errors:
            # Each message names its key, so a form shows which one to fix.
            raise ValidationError(
                {"config": [m if k in m else f"{k}: {m}" for k, m in sorted(errors.items())]}
            )
