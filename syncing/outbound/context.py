"""What every change of one (integration, entity type) in a push batch shares: the task's
adapter, field mapping, push conflict policy and attempt limit."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from castiel.http.retry import RetryPolicy
from integrations.adapters.base import adapter_for
from integrations.adapters.mapping import FieldMapping, RecordMappingError
from integrations.models import Integration
from syncing.models import OutboundChange, PushConflictStrategy, SyncTask


@dataclass
class PushContext:
    integration: Integration
    task: object | None
    adapter: object
    mapping: FieldMapping
    strategy: str
    max_attempts: int

    @property
    def retries(self) -> RetryPolicy:
        """Backoff between attempts, up to the task's attempt limit."""
        return RetryPolicy.from_settings("CASTIEL_OUTBOUND", max_attempts=self.max_attempts)

    def mapped(self, raw: dict | None) -> dict | None:
        """A provider object in local field names (None when absent or unmappable)."""
        if raw is None:
            return None
        try:
            return self.mapping.apply(raw)
        except RecordMappingError:
            return None


def build_context(change: OutboundChange) -> PushContext:
    integration = change.integration
    task = SyncTask.objects.filter(
        integration_id=integration.pk, entity_type=change.entity_type
    ).first()
    adapter = adapter_for(integration, change.entity_type)
    adapter.validate()
    return PushContext(
        integration=integration,
        task=task,
        adapter=adapter,
        mapping=FieldMapping(task.field_mapping if task else {}),
        strategy=task.push_conflict_strategy if task else PushConflictStrategy.LOCAL_WINS,
        max_attempts=(task.push_max_attempts if task else None)
        or settings.CASTIEL_OUTBOUND_MAX_ATTEMPTS,
    )
