"""Which deliveries an incident change makes (called inside the transaction that made it).

* opened → an alert to every matching *immediate* subscription (held during its quiet hours
  unless critical and allowed through);
* reminder → the same, for an incident still open after the re-notify interval;
* resolved → a resolution notice to the subscriptions that were told about the incident (an
  alert or reminder), if they want resolutions. An alert still held by quiet hours is
  cancelled instead, and nothing is said: the incident came and went while they slept (the
  digest, if any, still lists it).

One channel gets one message per change, however many subscriptions point at it.
"""

from __future__ import annotations

from django.utils import timezone

from notifications import delivery, messages, subscriptions
from notifications.models import Delivery, Incident, Subscription


def _rows(incident: Incident, subs: list[Subscription], kind: str, now) -> list[dict]:
    message = messages.for_incident(incident, kind)
    rows, seen = [], set()
    for subscription in subs:
        if subscription.channel_id in seen:
            continue
        seen.add(subscription.channel_id)
        hold = subscriptions.hold_until(subscription, incident.severity, now)
        rows.append(
            {
                "channel": subscription.channel,
                "subscription": subscription,
                "incident": incident,
                "kind": kind,
                "message": message,
                "hold_until": hold,
                "held_reason": f"quiet hours of {subscription.name}" if hold else "",
            }
        )
    return rows


def opened(incident: Incident) -> list[Delivery]:
    now = timezone.now()
    subs = subscriptions.matching(incident, mode=Subscription.Mode.IMMEDIATE)
    return delivery.create(_rows(incident, subs, Delivery.Kind.ALERT, now), now=now)


def reminder(incident: Incident) -> list[Delivery]:
    now = timezone.now()
    subs = subscriptions.matching(incident, mode=Subscription.Mode.IMMEDIATE)
    return delivery.create(_rows(incident, subs, Delivery.Kind.REMINDER, now), now=now)


def resolved(incident: Incident) -> list[Delivery]:
    now = timezone.now()
    told = (
        Delivery.objects.filter(
            incident=incident,
            kind__in=[Delivery.Kind.ALERT, Delivery.Kind.REMINDER],
            subscription__isnull=False,
        )
        .exclude(status=Delivery.Status.CANCELLED)
        .select_related("subscription__channel")
    )
    by_subscription: dict = {}
    for sent in told:
        by_subscription.setdefault(sent.subscription_id, []).append(sent)
    rows, channels = [], set()
    for items in by_subscription.values():
        subscription = items[0].subscription
        held = [
            d
            for d in items
            if d.status == Delivery.Status.QUEUED and d.attempts == 0 and d.queued_at > now
        ]
        if len(held) == len(items):
            Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
                status=Delivery.Status.CANCELLED,
                last_error="resolved before the quiet hours ended",
            )
            continue
        if not (subscription.enabled and subscription.notify_resolved):
            continue
        if not subscription.channel.enabled or subscription.channel_id in channels:
            continue
        channels.add(subscription.channel_id)
        rows += _rows(incident, [subscription], Delivery.Kind.RESOLVED, now)
    return delivery.create(rows, now=now)
