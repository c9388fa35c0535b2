"""Makers of notification rows for the tenant-isolation walk, schemathesis and the admin."""

from __future__ import annotations

from django.utils import timezone

from castiel.events import Kind, Severity
from notifications import services
from notifications.models import (
    Channel,
    Delivery,
    Digest,
    EventSubscription,
    Incident,
    Subscription,
)
from tests.factories import isolation_maker


@isolation_maker(Channel)
def make_channel(tenant, *, name=None, type="email", **data):
    if type == "email":
        data.setdefault("recipients", ["ops@example.com"])
    channel, _secret = services.channel_create(
        tenant=tenant, name=name or f"ops {Channel.objects.count()}", type=type, **data
    )
    return channel


@isolation_maker(Subscription)
def make_subscription(tenant, channel=None, **fields):
    channel = channel or make_channel(tenant)
    fields.setdefault("name", f"subscription {Subscription.objects.count()}")
    fields.setdefault("min_severity", Severity.INFO)
    return Subscription.objects.create(tenant=tenant, channel=channel, **fields)


@isolation_maker(EventSubscription)
def make_event_subscription(tenant, channel=None, **fields):
    channel = channel or make_channel(tenant, type="webhook", url="https://a.example/")
    fields.setdefault("name", f"events {EventSubscription.objects.count()}")
    return EventSubscription.objects.create(tenant=tenant, channel=channel, **fields)


@isolation_maker(Incident)
def make_incident(tenant, **fields):
    now = timezone.now()
    fields.setdefault("kind", str(Kind.SYNC_FAILING))
    fields.setdefault(
        "fingerprint", f"sync.failing:{tenant.pk if tenant else '-'}:x:{now.timestamp()}"
    )
    fields.setdefault("severity", Severity.ERROR)
    fields.setdefault("subject_type", "synctask")
    fields.setdefault("subject_id", "1")
    fields.setdefault("subject_label", "contacts")
    return Incident.objects.create(
        tenant=tenant, first_seen_at=now, last_seen_at=now, last_notified_at=now, **fields
    )


@isolation_maker(Delivery)
def make_delivery(tenant, **fields):
    channel = fields.pop("channel", None) or make_channel(tenant)
    fields.setdefault("kind", Delivery.Kind.TEST)
    fields.setdefault("message", {"kind": "test", "title": "Test", "summary": "", "fields": []})
    fields.setdefault("status", Delivery.Status.DEAD)
    return Delivery.objects.create(tenant=tenant, channel=channel, max_attempts=1, **fields)


@isolation_maker(Digest)
def make_digest(tenant):
    subscription = make_subscription(tenant, mode=Subscription.Mode.DIGEST)
    now = timezone.now()
    return Digest.objects.create(
        subscription=subscription, tenant=tenant, period_start=now, period_end=now
    )
