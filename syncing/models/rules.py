"""Push rules: a webhook about one integration's record writes a record of another."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from castiel.tenancy.models import TenantOwned


class PushRule(TenantOwned):
    """When a webhook says a record of one integration changed, write a record of another.

    Evaluated by the ``push.evaluate_rules`` webhook action
    (``syncing/reactions/push_rules.py``): for an event of ``source_integration`` about
    ``source_entity_type`` whose type matches ``event_types``, the event's payload is mapped
    with ``field_mapping`` (target local field → source path, the sync tasks' mapping
    language), the target record whose ``match_field`` has the mapped value is updated — or
    created when none exists and ``create_missing`` is on — through the outbox, so the change
    is pushed to the target provider like any other local change (origin ``rule``).
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
