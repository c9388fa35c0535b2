"""History owed by a record store outside the database transaction (Cosmos DB).

With the ORM store a page's records, history rows and checkpoint commit together. With Cosmos
DB the records are written first and the history rows commit afterwards with the relational
transaction; if that transaction fails (or the process dies in between), the records stay
written and the replayed page finds them "unchanged" — without this module their changes
would never reach the history or the change feed.

So each record the pipeline writes to such a store carries the history row it is owed, as
``feed_intent`` in the document itself (``{"v", "action", "fields", "source", "source_id",
"at"}``: written in the same Cosmos DB operation as the data, so the two cannot part). Every
later page that meets the record (the replay, or the next sync) checks, in its own
transaction and before its own writes, whether the row for that version exists; if not, it
writes it — before any newer change of the record, so the feed keeps the record's order.

Exact, not a heuristic: an intent is owed only while its version is the record's version (a
local edit, a push write-back or a deletion moves the version on and writes its own history
in its own transaction), and only within the history's retention (an older row may have been
pruned). The price on the Cosmos DB path: one indexed query per page that meets existing
records; the ORM path pays nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from syncing.models import RecordChange
from syncing.records import history


def note_intents(pipeline, decisions, creates: list, updates: list) -> None:
    """Before the store write: each created or changed record carries its history row."""
    if pipeline.store.joins_transaction:
        return
    before = {d.existing.id: d.existing for d in decisions if d.existing is not None}
    source, source_id = pipeline.history_source
    at = timezone.now().isoformat()

    def intent(record, action, fields) -> dict:
        return {
            "v": record.version,
            "action": str(action),
            "fields": list(fields),
            "source": source,
            "source_id": source_id,
            "at": at,
        }

    for record in creates:
        record.feed_intent = intent(record, RecordChange.Action.CREATED, ())
    for record in updates:
        change = history.classify(before.get(record.id), record)
        if change is not None:
            record.feed_intent = intent(record, *change)


def settle_owed(pipeline, decisions) -> int:
    """Before this page's writes: write the history rows the store's copies are owed (their
    page failed after the store write). Returns how many were owed."""
    if pipeline.store.joins_transaction:
        return 0
    cutoff = timezone.now() - timedelta(days=settings.CASTIEL_RECORD_HISTORY_RETENTION_DAYS)
    candidates = {}
    for decision in decisions:
        record = decision.existing
        intent = getattr(record, "feed_intent", None) if record is not None else None
        if not intent or intent.get("v") != record.version:
            continue
        try:
            if datetime.fromisoformat(intent["at"]) < cutoff:
                continue
        except (KeyError, TypeError, ValueError):
            continue
        candidates[(record.id, record.version)] = (record, intent)
    if not candidates:
        return 0
    present = set(
        RecordChange.objects.filter(
            record_id__in={key[0] for key in candidates},
            version__in={key[1] for key in candidates},
        ).values_list("record_id", "version")
    )
    owed = [value for key, value in candidates.items() if key not in present]
    if owed:
        history.owed(owed)
    return len(owed)
