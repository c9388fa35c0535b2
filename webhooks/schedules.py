"""Recurring webhook work: re-queue due retries and lost wake-ups; apply the retention."""

from castiel.schedules import declare

declare("webhooks-requeue-due", "webhooks.tasks.requeue_due", minutes=1, kind="webhooks")
declare("webhooks-purge", "webhooks.tasks.purge_events", minutes=60, kind="maintenance")
