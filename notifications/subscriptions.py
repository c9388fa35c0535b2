"""Which subscriptions an incident reaches, quiet hours, and when digests are due.

Times of day (quiet hours, a daily digest's time) are local to the subscription's IANA time
zone; everything stored is UTC. Days with a daylight-saving change are handled by
``zoneinfo``: a local time that does not exist that day (skipped hour) resolves forwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from django.db.models import Q

from castiel.events import Kind, Severity
from notifications.models import Incident, Subscription

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def timezone_error(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    if name in _zones():
        return None
    return f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'."


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


# -- matching -----------------------------------------------------------------------------------


def candidates(incident: Incident, *, mode: str) -> list[Subscription]:
    """Enabled subscriptions of ``mode`` whose scope covers the incident's tenant (operator-wide
    ones cover every tenant and the platform), with their channel, of active tenants only."""
    scope = Q(tenant__isnull=True)
    if incident.tenant_id:
        scope |= Q(tenant_id=incident.tenant_id, tenant__is_active=True)
    return list(
        Subscription.objects.filter(scope, enabled=True, mode=mode, channel__enabled=True)
        .select_related("channel")
        .order_by("created_at", "id")
    )


def integration_filters(subscriptions: list[Subscription]) -> dict:
    """subscription id → set of integration ids it is limited to (absent = all)."""
    through = Subscription.integrations.through
    limits: dict = {}
    rows = through.objects.filter(subscription_id__in=[s.pk for s in subscriptions]).values_list(
        "subscription_id", "integration_id"
    )
    for subscription_id, integration_id in rows:
        limits.setdefault(subscription_id, set()).add(integration_id)
    return limits


def matches(subscription: Subscription, incident: Incident, limits: dict) -> bool:
    if subscription.tenant_id and subscription.tenant_id != incident.tenant_id:
        return False
    if subscription.event_kinds and incident.kind not in subscription.event_kinds:
        return False
    if incident.severity < subscription.min_severity:
        return False
    allowed = limits.get(subscription.pk)
    if allowed and incident.integration_id not in allowed:
        return False
    if incident.kind == Kind.CHANNEL_FAILING and incident.subject_id == str(
        subscription.channel_id
    ):
        return False  # a failing channel is not told about its own failure
    return True


def matching(incident: Incident, *, mode: str) -> list[Subscription]:
    subscriptions = candidates(incident, mode=mode)
    limits = integration_filters(subscriptions)
    return [s for s in subscriptions if matches(s, incident, limits)]


# -- quiet hours ---------------------------------------------------------------------------------


def _next_local(local: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first moment after ``local`` whose local time is ``at``."""
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate


def quiet_until(subscription: Subscription, moment: datetime) -> datetime | None:
    """When the quiet period that ``moment`` falls in ends (UTC), or None if not quiet."""
    start, end = subscription.quiet_start, subscription.quiet_end
    if start is None or end is None or start == end:
        return None
    tz = zone(subscription.timezone)
    local = moment.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    quiet = start <= now < end if start < end else (now >= start or now < end)
    if not quiet:
        return None
    return _next_local(local, end, tz).astimezone(UTC)


def hold_until(subscription: Subscription, severity: int, moment: datetime) -> datetime | None:
    if severity >= Severity.CRITICAL and subscription.critical_during_quiet:
        return None
    return quiet_until(subscription, moment)


# -- digests -------------------------------------------------------------------------------------


def next_digest_at(subscription: Subscription, after: datetime) -> datetime:
    """The first digest time strictly after ``after`` (UTC)."""
    tz = zone(subscription.timezone)
    every = subscription.digest_every or Subscription.Every.DAILY
    if every == Subscription.Every.MINUTES:
        step = timedelta(minutes=max(1, subscription.digest_minutes))
        periods = (after - EPOCH) // step
        return EPOCH + (periods + 1) * step
    local = after.astimezone(tz)
    if every == Subscription.Every.HOURLY:
        top = local.replace(minute=0, second=0, microsecond=0)
        # Step in UTC: an hour is an hour, also across a daylight-saving change.
        return (top.astimezone(UTC) + timedelta(hours=1)).astimezone(UTC)
    at = subscription.digest_time or time(9, 0)
    return _next_local(local, at, tz).astimezone(UTC)
