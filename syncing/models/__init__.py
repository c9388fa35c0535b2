"""Sync state, one module per subsystem: tasks and runs, conflicts, records and their
history, the outbound outbox and dead letters, push rules."""

from syncing.models.conflicts import Conflict
from syncing.models.history import ChangeFeedPruned, RecordChange
from syncing.models.outbound import DeadLetter, OutboundChange
from syncing.models.records import Record, RecordKey
from syncing.models.rules import PushRule
from syncing.models.tasks import (
    ConflictStrategy,
    DedupStrategy,
    PushConflictStrategy,
    SyncRun,
    SyncTask,
)

__all__ = [
    "ChangeFeedPruned",
    "Conflict",
    "ConflictStrategy",
    "DeadLetter",
    "DedupStrategy",
    "OutboundChange",
    "PushConflictStrategy",
    "PushRule",
    "Record",
    "RecordChange",
    "RecordKey",
    "SyncRun",
    "SyncTask",
]
