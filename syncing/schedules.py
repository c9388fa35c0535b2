"""Recurring sync work (applied idempotently by castiel.schedules after migrate)."""

from castiel.schedules import declare

# django-q2 schedules run at most once a minute; a tick claims every due task (in batches)
# each time, and "run now" claims at once, so the minute is the scheduling granularity.
declare("sync-scheduler-tick", "syncing.tasks.scheduler_tick", minutes=1, kind="maintenance")
declare("sync-reaper", "syncing.tasks.reap", minutes=1, kind="maintenance")
# Outbound: return expired push leases, prune old results, dispatch due changes (retries whose
# backoff ended, wake-ups a cache or broker failure lost).
declare("outbound-tick", "syncing.tasks.outbound_tick", minutes=1, kind="maintenance")
# Record history older than CASTIEL_RECORD_HISTORY_RETENTION_DAYS (90) is deleted in batches.
declare(
    "record-history-prune", "syncing.tasks.prune_record_history", minutes=60, kind="maintenance"
)
