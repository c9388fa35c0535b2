from __future__ import annotations

from django.db import models
from django.utils import timezone


class StoredSecret(models.Model):
    """One version of one secret in the encrypted database store (Fernet ciphertext only)."""

    name = models.CharField(max_length=127)
    version = models.PositiveIntegerField()
    ciphertext = models.TextField(editable=False)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_on = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="stored_secret_version")
        ]
        indexes = [models.Index(fields=["name", "-version"], name="stored_secret_latest")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
