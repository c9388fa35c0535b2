"""django-q2 entry points (thin: the work is in delivery, incidents and digests)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def deliver_channel(channel_id: str) -> dict:
    """Send a channel's due deliveries, in order (woken after planning and by the sweeper)."""
    from notifications.delivery import work_channel

    return work_channel(channel_id)


def tick() -> dict:
    """Every minute: digests due, reminders, quiet-period resolution, and the sweeper that
    wakes channels whose head is due (retries, quiet hours over, lost wake-ups)."""
    from notifications import delivery, digests, incidents

    return {
        "digests": digests.run_due(),
        "reminders": incidents.remind(),
        "auto_resolved": incidents.auto_resolve(),
        "channels_woken": delivery.sweep(),
    }


def purge() -> dict:
    """Delete finished deliveries and resolved incidents older than the retention."""
    from notifications.models import Delivery, Digest, Incident

    cutoff = timezone.now() - timedelta(days=settings.CASTIEL_NOTIFY_RETENTION_DAYS)
    deliveries, _ = Delivery.objects.filter(
        status__in=[Delivery.Status.DELIVERED, Delivery.Status.CANCELLED], created_at__lt=cutoff
    ).delete()
    digests, _ = Digest.objects.filter(period_end__lt=cutoff, deliveries__isnull=True).delete()
    resolved, _ = Incident.objects.filter(
        state=Incident.State.RESOLVED, resolved_at__lt=cutoff, deliveries__isnull=True
    ).delete()
    return {"deliveries": deliveries, "digests": digests, "incidents": resolved}
