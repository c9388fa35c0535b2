"""Digests: per subscription, a summary of a period's incidents, sent once.

Each digest subscription carries its clock: the next digest covers ``[digest_from,
next_digest_at)``. The maintenance schedule (every minute) takes each due subscription with a
conditional ``UPDATE`` that moves the clock forward; in the same transaction it builds the
digest, writes the ``Digest`` row (unique per subscription and period end) and its delivery.
A worker killed anywhere before the commit leaves the clock where it was (the next run builds
the same digest); after it, the digest exists once and its delivery is durable — so nothing is
built or queued twice. Periods missed while no worker ran are covered by one digest.

A digest lists, per tenant and integration: incidents opened in the period, resolved in it,
and still open at its end, with counts and admin links. A digest with none of these is not
sent (the clock still moves on).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from castiel.observability.logging import get_logger
from notifications import delivery, messages, subscriptions
from notifications.models import Delivery, Digest, Incident, Subscription

log = get_logger(__name__)

MAX_INCIDENTS = 5000
MAX_PERIODS = 10_000


def due(*, now=None):
    now = now or timezone.now()
    return Subscription.objects.filter(
        mode=Subscription.Mode.DIGEST, enabled=True, next_digest_at__lte=now
    ).select_related("channel")


def run_due(*, now=None) -> dict:
    now = now or timezone.now()
    summary = {"sent": 0, "empty": 0, "skipped": 0}
    for subscription in due(now=now)[:500]:
        result = build(subscription, now=now)
        summary[result] += 1
    return summary


def _period_end(subscription: Subscription, now):
    """The latest scheduled digest time at or before ``now``."""
    end = subscription.next_digest_at
    for _ in range(MAX_PERIODS):
        following = subscriptions.next_digest_at(subscription, end)
        if following > now:
            return end, following
        end = following
    return end, subscriptions.next_digest_at(subscription, now)


def build(subscription: Subscription, *, now=None) -> str:
    """Build and queue the due digest of ``subscription``: ``sent``, ``empty`` or ``skipped``
    (another worker took it)."""
    now = now or timezone.now()
    start = subscription.digest_from or subscription.created_at
    end, following = _period_end(subscription, now)
    with transaction.atomic():
        claimed = Subscription.objects.filter(
            pk=subscription.pk,
            mode=Subscription.Mode.DIGEST,
            next_digest_at=subscription.next_digest_at,
        ).update(digest_from=end, next_digest_at=following)
        if not claimed:
            return "skipped"
        groups, totals = summarise(subscription, start, end)
        if not any(totals.values()):
            return "empty"
        digest, created = Digest.objects.get_or_create(
            subscription=subscription,
            period_end=end,
            defaults={
                "tenant_id": subscription.tenant_id,
                "period_start": start,
                "opened": totals["opened"],
                "resolved": totals["resolved"],
                "still_open": totals["still_open"],
                "summary": {"groups": groups},
            },
        )
        if not created:
            return "skipped"
        message = messages.for_digest(
            period_start=start, period_end=end, groups=groups, totals=totals
        )
        if subscription.channel.enabled:
            hold = subscriptions.quiet_until(subscription, now)
            delivery.create(
                [
                    {
                        "channel": subscription.channel,
                        "subscription": subscription,
                        "digest": digest,
                        "kind": Delivery.Kind.DIGEST,
                        "message": message,
                        "hold_until": hold,
                        "held_reason": f"quiet hours of {subscription.name}" if hold else "",
                    }
                ],
                now=now,
            )
    log.info(
        "notifications.digest_built",
        subscription=str(subscription.pk),
        period_end=end.isoformat(),
        **totals,
    )
    return "sent"


def summarise(subscription: Subscription, start, end) -> tuple[list[dict], dict]:
    """Groups (per tenant and integration) of incidents opened, resolved or still open."""
    scope = Q()
    if subscription.tenant_id:
        scope = Q(tenant_id=subscription.tenant_id)
    window = (
        Q(first_seen_at__gte=start, first_seen_at__lt=end)
        | Q(resolved_at__gte=start, resolved_at__lt=end)
        | Q(first_seen_at__lt=end) & (Q(resolved_at__isnull=True) | Q(resolved_at__gte=end))
    )
    candidates = list(
        Incident.objects.filter(scope)
        .filter(window)
        .order_by("first_seen_at", "id")[:MAX_INCIDENTS]
    )
    limits = subscriptions.integration_filters([subscription])
    names = _names(candidates)
    grouped: dict[tuple, dict] = {}
    totals = {"opened": 0, "resolved": 0, "still_open": 0}
    for incident in candidates:
        if not subscriptions.matches(subscription, incident, limits):
            continue
        opened = start <= incident.first_seen_at < end
        resolved = incident.resolved_at is not None and start <= incident.resolved_at < end
        still_open = incident.first_seen_at < end and (
            incident.resolved_at is None or incident.resolved_at >= end
        )
        if not (opened or resolved or still_open):
            continue
        key = (incident.tenant_id, incident.integration_id)
        group = grouped.setdefault(
            key,
            {
                "tenant_id": str(incident.tenant_id) if incident.tenant_id else None,
                "tenant": names.get(incident.tenant_id, ""),
                "integration_id": str(incident.integration_id) if incident.integration_id else None,
                "integration": names.get(incident.integration_id, ""),
                "opened": 0,
                "resolved": 0,
                "still_open": 0,
                "incidents": [],
                "more": 0,
            },
        )
        for flag, name in ((opened, "opened"), (resolved, "resolved"), (still_open, "still_open")):
            if flag:
                group[name] += 1
                totals[name] += 1
        if len(group["incidents"]) < messages.MAX_INCIDENTS_PER_GROUP:
            group["incidents"].append(
                {
                    "id": str(incident.pk),
                    "title": f"{incident.title}: {incident.subject_label or incident.subject_id}",
                    "kind": incident.kind,
                    "state": "resolved" if resolved and not still_open else "open",
                    "severity": messages.severity_label(incident.severity),
                    "occurrences": incident.occurrences,
                    "link": messages.admin_link("admin:notifications_incident_change", incident.pk),
                }
            )
        else:
            group["more"] += 1
    groups = sorted(grouped.values(), key=lambda g: (g["tenant"] or "", g["integration"] or ""))
    return groups, totals


def _names(incidents: list[Incident]) -> dict:
    from castiel.tenancy.models import Tenant
    from integrations.models import Integration

    tenant_ids = {i.tenant_id for i in incidents if i.tenant_id}
    integration_ids = {i.integration_id for i in incidents if i.integration_id}
    names = dict(Tenant.objects.filter(pk__in=tenant_ids).values_list("id", "name"))
    names.update(Integration.objects.filter(pk__in=integration_ids).values_list("id", "name"))
    return names
