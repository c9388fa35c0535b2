"""Before a run reads anything: check the task's integration and configuration, and work out
where to start (the checkpoint of an interrupted run, else the watermark) — the :class:`Plan`.

Writes nothing, so the dry run (``preview.py``) uses it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from integrations.adapters.base import InvalidCursor, adapter_for
from integrations.adapters.normalize import parse_timestamp
from syncing.inbound.errors import SyncFailure
from syncing.inbound.pipeline import PagePipeline, PipelineConfigError, pipeline_for_task
from syncing.models import SyncTask
from syncing.records.stores import get_store


@dataclass
class Plan:
    """How a run reads (adapter, page pipeline) and where it is (cursor, newest updated-at
    seen); ``cursor`` and the newest updated-at move as pages commit."""

    adapter: object
    pipeline: PagePipeline
    since: str | None
    cursor: object
    max_updated_raw: str | None
    max_updated: datetime | None
    generation: int | None  # a full refresh's generation (None: incremental)


def preflight(task: SyncTask, run=None) -> Plan:
    """The run's plan, or :class:`SyncFailure` with the reason it cannot start."""
    integration = task.integration
    if not integration.enabled:
        raise SyncFailure("integration_disabled", f"integration {integration.name!r} is disabled")
    if integration.status != integration.Status.ACTIVE:
        reason = f": {integration.status_reason}" if integration.status_reason else ""
        raise SyncFailure(
            "integration_not_active",
            f"integration {integration.name!r} is {integration.status}{reason}",
        )
    adapter = adapter_for(integration, task.entity_type)
    adapter.validate()
    checkpoint = task.checkpoint or {}
    if not isinstance(checkpoint, dict) or not isinstance(task.state or {}, dict):
        raise SyncFailure("invalid_cursor", "stored checkpoint/state is not an object")
    try:
        adapter.validate_cursor(checkpoint.get("cursor"))
    except InvalidCursor as exc:
        raise SyncFailure("invalid_cursor", f"stored cursor is invalid: {exc}") from None
    since = checkpoint["since"] if "since" in checkpoint else (task.state or {}).get("watermark")
    if task.mode == SyncTask.Mode.FULL:
        since = checkpoint.get("since")  # a full refresh reads everything
    if since is not None and (not isinstance(since, str) or parse_timestamp(since) is None):
        raise SyncFailure("invalid_cursor", f"stored watermark {since!r} is not a timestamp")
    generation = None
    if task.mode == SyncTask.Mode.FULL:
        generation = checkpoint.get("generation") or task.full_refresh_generation + 1
    try:
        pipeline = pipeline_for_task(
            task, adapter=adapter, store=get_store(), generation=generation, run=run
        )
    except PipelineConfigError as exc:
        raise SyncFailure(exc.code, str(exc)) from None
    max_updated_raw = checkpoint.get("max_updated_at")
    return Plan(
        adapter=adapter,
        pipeline=pipeline,
        since=since,
        cursor=checkpoint.get("cursor"),
        max_updated_raw=max_updated_raw,
        max_updated=parse_timestamp(max_updated_raw),
        generation=generation,
    )
