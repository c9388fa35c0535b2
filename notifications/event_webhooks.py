"""Tenant application events: ``sync.completed`` and friends, to the tenant's signed webhooks.

:func:`handle` is a ``castiel.events`` sink (registered next to the incident fold), so these
events are raised like every other — ``emit(...)`` where the fact happens — and reach it only
**after the raising transaction commits** (dropped on rollback), in a transaction of its own:
a sync run or a webhook's processing never waits on a receiver, and a failing one never fails
them (the sink only writes delivery rows; a sink error is logged by ``emit``'s dispatch).

Unlike incidents, events are not folded: each one becomes one message per subscribed channel,
a :class:`~notifications.models.Delivery` of kind ``event`` on the channel's queue — sent in
order per channel, retried with backoff, dead-lettered and replayable like every delivery
(notifications/delivery.py), signed by the signed-webhook channel with Standard Webhooks
headers. The body is ``{"type": "<event type>", "timestamp": …, "data": <the message>}``
(notifications/channels/webhook.py renders the message's ``kind`` as the type).

What each event says is built here, at planning time, from the rows (the run's counters as
committed, not a worker's memory), and stored on the delivery: a retry or replay sends the
same bytes. Sync events carry the change-feed cursor from which
``GET /api/v1/records/changes/?run=<run id>&cursor=<cursor>`` returns exactly the run's
changes (``syncing.records.feed.run_start``), ready-made as ``changes.path``.

Matching costs one indexed query of the tenant's enabled event subscriptions per event; the
events are raised once per run end or processed webhook, never per record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.db import transaction

from castiel.events import Event, Kind
from castiel.observability.logging import get_logger
from notifications import delivery
from notifications.messages import admin_link, iso
from notifications.models import Channel, Delivery, EventSubscription

log = get_logger(__name__)

EVENT_TYPES = (
    Kind.SYNC_COMPLETED,
    Kind.SYNC_FAILED,
    Kind.RECORDS_CHANGED,
    Kind.CREDENTIAL_REAUTH_REQUIRED,
    Kind.WEBHOOK_RECEIVED,
)
# Sent only to subscriptions that name them (one message per received webhook is a lot).
OPT_IN = (Kind.WEBHOOK_RECEIVED,)
EVENT_TYPE_VALUES = tuple(str(k) for k in EVENT_TYPES)
FEED_PATH = "/api/v1/records/changes/"


def event_types_error(value) -> str | None:
    """Why ``value`` is not a list of event types, or None."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "A list of event types."
    unknown = sorted(set(value) - set(EVENT_TYPE_VALUES))
    if unknown:
        return f"Unknown event type {unknown[0]!r}: use {', '.join(EVENT_TYPE_VALUES)}."
    return None


def channel_error(channel: Channel | None, tenant) -> str | None:
    """Why ``channel`` cannot receive ``tenant``'s events, or None."""
    if channel is None:
        return "A channel is required."
    if tenant is not None and channel.tenant_id != getattr(tenant, "pk", tenant):
        return "Not a channel of this tenant."
    if channel.type != Channel.Type.WEBHOOK:
        return "Events go to signed-webhook channels (type webhook) only."
    return None


def wants(subscription: EventSubscription, kind: str) -> bool:
    if subscription.event_types:
        return kind in subscription.event_types
    return kind not in OPT_IN


# -- the sink ------------------------------------------------------------------------------------


def handle(event: Event) -> None:
    """Plan one delivery per subscribed channel for a tenant application event."""
    if event.kind not in EVENT_TYPES or not event.tenant_id:
        return
    subscriptions = _matching(event)
    if not subscriptions:
        return
    message = build(event)
    if message is None:
        return
    rows, seen = [], set()
    for subscription in subscriptions:
        if subscription.channel_id in seen:
            continue  # one message per channel, however many subscriptions point at it
        seen.add(subscription.channel_id)
        rows.append(
            {
                "channel": subscription.channel,
                "kind": Delivery.Kind.EVENT,
                "message": message,
            }
        )
    with transaction.atomic():
        delivery.create(rows)
    log.info(
        "notifications.event_planned",
        type=str(event.kind),
        tenant=event.tenant_id,
        channels=len(rows),
    )


def _matching(event: Event) -> list[EventSubscription]:
    subscriptions = list(
        EventSubscription.objects.filter(
            tenant_id=event.tenant_id,
            tenant__is_active=True,
            enabled=True,
            channel__enabled=True,
            channel__type=Channel.Type.WEBHOOK,
            channel__tenant_id=event.tenant_id,
        )
        .select_related("channel")
        .order_by("created_at", "id")
    )
    subscriptions = [s for s in subscriptions if wants(s, str(event.kind))]
    if not subscriptions:
        return []
    through = EventSubscription.integrations.through
    limits: dict = {}
    for subscription_id, integration_id in through.objects.filter(
        eventsubscription_id__in=[s.pk for s in subscriptions]
    ).values_list("eventsubscription_id", "integration_id"):
        limits.setdefault(subscription_id, set()).add(str(integration_id))
    return [
        s
        for s in subscriptions
        if s.pk not in limits or (event.integration_id or "") in limits[s.pk]
    ]


# -- what each event says ------------------------------------------------------------------------


def build(event: Event) -> dict | None:
    """The delivery's message: ``kind`` (the event type), a title and summary for people, and
    the facts for machines. None when what it is about is gone."""
    if event.kind in (Kind.SYNC_COMPLETED, Kind.SYNC_FAILED, Kind.RECORDS_CHANGED):
        data = _run_event(event)
    elif event.kind == Kind.WEBHOOK_RECEIVED:
        data = _webhook_event(event)
    else:
        data = _credential_event(event)
    if data is None:
        return None
    return {
        "kind": str(event.kind),
        "occurred_at": iso(datetime.fromtimestamp(event.occurred_at, tz=UTC)),
        "tenant_id": event.tenant_id,
        **data,
    }


def _integration(integration_id) -> dict | None:
    from integrations.models import Integration

    if not integration_id:
        return None
    found = Integration.objects.filter(pk=integration_id).values("id", "name", "provider").first()
    if found is None:
        return {"id": str(integration_id), "name": "", "provider": ""}
    return {"id": str(found["id"]), "name": found["name"], "provider": found["provider"]}


def _run_event(event: Event) -> dict | None:
    from syncing.models import SyncRun
    from syncing.records import feed

    run_id = event.details.get("run_id")
    run = (
        SyncRun.objects.filter(pk=run_id, tenant_id=event.tenant_id).select_related("task").first()
        if run_id
        else None
    )
    if run is None:
        return None
    task = run.task
    filters = feed.Filters(run_id=run.pk)
    start = feed.run_start(event.tenant_id, run.pk)
    cursor = feed.encode(start if start is not None else feed.horizon(), event.tenant_id, filters)
    counts = {name: getattr(run, name) for name in ("created", "updated", "deleted")}
    counts.update(
        {name: getattr(run, name) for name in ("fetched", "unchanged", "conflicts", "errors")}
    )
    title = {
        Kind.SYNC_COMPLETED: "Sync run completed",
        Kind.SYNC_FAILED: "Sync run failed",
        Kind.RECORDS_CHANGED: "Records changed",
    }[event.kind]
    label = task.name or f"{task.entity_type} ({task.integration_id})"
    data = {
        "title": f"{title}: {label}",
        "summary": (
            f"{counts['created']} created, {counts['updated']} updated, "
            f"{counts['deleted']} deleted."
        ),
        "link": admin_link("admin:syncing_syncrun_change", run.pk),
        "integration": _integration(task.integration_id),
        "task": {
            "id": str(task.pk),
            "name": task.name,
            "entity_type": task.entity_type,
            "mode": task.mode,
        },
        "run": {
            "id": str(run.pk),
            "status": run.status,
            "trigger": run.trigger,
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "pages": run.pages,
        },
        "counts": counts,
        "changes": {
            "run": str(run.pk),
            "cursor": cursor,
            "path": f"{FEED_PATH}?{urlencode({'run': str(run.pk), 'cursor': cursor})}",
        },
    }
    if event.kind == Kind.SYNC_FAILED:
        data["error"] = {"code": run.error_code, "message": event.message or run.error_summary}
        data["consecutive_failures"] = event.details.get("consecutive_failures")
    return data


def _credential_event(event: Event) -> dict:
    integration = _integration(event.integration_id)
    name = (integration or {}).get("name") or event.subject.label
    return {
        "title": f"Credential needs re-authorisation: {name}",
        "summary": event.message
        or "The provider refused the token refresh: syncs and pushes are paused until the "
        "integration is connected again.",
        "link": admin_link("admin:integrations_integration_change", event.integration_id)
        if event.integration_id
        else "",
        "integration": integration,
        "reason": event.message,
    }


def _webhook_event(event: Event) -> dict | None:
    from webhooks.models import WebhookEvent

    received = (
        WebhookEvent.objects.filter(pk=event.details.get("webhook_event_id"))
        .filter(tenant_id=event.tenant_id)
        .select_related("registration")
        .first()
    )
    if received is None:
        return None
    registration = received.registration
    return {
        "title": f"Webhook received: {received.event_type or registration.name}",
        "summary": f"{received.provider or registration.scheme} {received.event_type} "
        f"{received.external_id} — {received.status}".strip(),
        "link": admin_link("admin:webhooks_webhookevent_change", received.pk),
        "integration": _integration(registration.integration_id),
        "registration": {"id": str(registration.pk), "name": registration.name},
        "webhook_event": {
            "id": str(received.pk),
            "status": received.status,
            "provider": received.provider,
            "event_type": received.event_type,
            "entity_type": received.entity_type,
            "external_id": received.external_id,
            "received_at": iso(received.received_at),
            "processed_at": iso(received.processed_at),
        },
    }
