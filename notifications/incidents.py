"""Events → incidents: fold by fingerprint, resolve on recovery, remind, auto-resolve.

:func:`handle` is the sink registered with ``castiel.events`` (it runs in the thread that
raised the event, after that thread's transaction committed, in a transaction of its own):

* a problem event is **folded** into the live incident of its fingerprint with one statement,
  ``INSERT … ON CONFLICT (fingerprint) WHERE state IN ('open', 'acknowledged') DO UPDATE SET
  occurrences = occurrences + 1 …`` against a partial unique index: whatever the number of
  processes, one fingerprint has at most one live incident, and exactly one caller inserts it
  — that caller (and only it) plans the alert deliveries, in the same transaction;
* a recovery event resolves the live incidents of the kinds it names with one
  ``UPDATE … WHERE state IN (…) RETURNING id``: exactly one caller gets each row back and
  plans its resolution notices;
* spike kinds (signature rejections) count events per fixed window in the cache and open an
  incident only past the threshold; below it an event only folds into a live incident.

Reminders (:func:`remind`) and quiet-period resolution (:func:`auto_resolve`) run from the
maintenance schedule.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from castiel.events import CATALOGUE, Event, Kind
from castiel.observability.logging import get_logger
from notifications import metrics
from notifications.models import Incident

log = get_logger(__name__)

_TABLE = Incident._meta.db_table
_LIVE_SQL = "state IN ('open', 'acknowledged')"
_COLUMNS = (
    "id",
    "tenant_id",
    "fingerprint",
    "kind",
    "severity",
    "state",
    "subject_type",
    "subject_id",
    "subject_label",
    "integration_id",
    "message",
    "details",
    "occurrences",
    "first_seen_at",
    "last_seen_at",
    "last_notified_at",
    "reminders_sent",
    "acknowledged_by",
    "resolved_by",
)


def _upsert_sql(vendor: str) -> str:
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    values = ", ".join(["%s"] * len(_COLUMNS))
    # Constants only (table, columns, placeholders): every value is a parameter.
    return (
        f'INSERT INTO "{_TABLE}" ({columns}) VALUES ({values}) '  # noqa: S608
        f"ON CONFLICT (fingerprint) WHERE {_LIVE_SQL} DO UPDATE SET "
        f'"occurrences" = "{_TABLE}"."occurrences" + EXCLUDED."occurrences", '
        f'"last_seen_at" = {greatest}("{_TABLE}"."last_seen_at", EXCLUDED."last_seen_at"), '
        f'"severity" = {greatest}("{_TABLE}"."severity", EXCLUDED."severity"), '
        '"message" = EXCLUDED."message", "details" = EXCLUDED."details", '
        '"subject_label" = EXCLUDED."subject_label" '
        'RETURNING "id", "occurrences"'
    )


_FOLD_SQL = (  # constants only; values are parameters
    f'UPDATE "{_TABLE}" SET "occurrences" = "occurrences" + 1, "last_seen_at" = %s '  # noqa: S608
    f'WHERE "fingerprint" = %s AND {_LIVE_SQL}'
)


def _prep(name: str, value):
    return Incident._meta.get_field(name).get_db_prep_save(value, connection)


def _seen_at(event: Event) -> datetime:
    return datetime.fromtimestamp(event.occurred_at, tz=UTC)


# -- the sink ------------------------------------------------------------------------------------


def handle(event: Event) -> None:
    """Fold, open or resolve for one event (the ``castiel.events`` sink)."""
    metrics.EVENTS.labels(str(event.kind)).inc()
    spec = event.spec
    if spec.is_recovery:
        resolve(event.resolved_fingerprints(), by=f"recovery: {event.kind}")
        return
    if event.kind == Kind.TEST or not spec.incident:
        return  # tenant application events are delivered as they are (event_webhooks.py)
    if spec.threshold is not None:
        count = _count_in_window(event)
        threshold = max(1, int(spec.threshold()))
        if count < threshold:
            _fold_only(event)
            return
        record(event, occurrences=count if count == threshold else 1)
        return
    record(event)


def subject_label(event: Event) -> str:
    """The subject's name for people. Raise-points that know only an integration's id (the
    limiter, the outbox) leave the label empty; the incident — and every alert built from it —
    names the integration instead of showing a bare UUID (cached for a few minutes: a storm of
    events costs one lookup)."""
    if event.subject.label or event.subject.type != "integration":
        return event.subject.label or ""
    integration_id = _uuid_or_none(event.subject.id)
    if integration_id is None:
        return ""

    def lookup() -> str:
        from integrations.models import Integration

        found = Integration.objects.filter(pk=integration_id).values_list("name", flat=True)
        return next(iter(found), "")

    try:
        return cache.get_or_set(f"notify:integration-label:{integration_id}", lookup, 300) or ""
    except Exception:  # the cache is down (e.g. Redis lost): the incident still folds
        return lookup()


def record(event: Event, *, occurrences: int = 1) -> Incident | None:
    """Fold ``event`` into its live incident, or open one; returns the incident when this call
    opened it (and planned its alerts), else None."""
    seen = _seen_at(event)
    new_id = uuid.uuid4()
    values = {
        "id": new_id,
        "tenant_id": uuid.UUID(event.tenant_id) if event.tenant_id else None,
        "fingerprint": event.fingerprint[:300],
        "kind": str(event.kind),
        "severity": int(event.severity),
        "state": Incident.State.OPEN,
        "subject_type": event.subject.type[:64],
        "subject_id": event.subject.id[:100],
        "subject_label": subject_label(event)[:300],
        "integration_id": _uuid_or_none(event.integration_id),
        "message": event.message,
        "details": dict(event.details),
        "occurrences": occurrences,
        "first_seen_at": seen,
        "last_seen_at": seen,
        "last_notified_at": seen,
        "reminders_sent": 0,
        "acknowledged_by": "",
        "resolved_by": "",
    }
    params = [_prep(column, values[column]) for column in _COLUMNS]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(connection.vendor), params)
            row_id, _count = cursor.fetchone()
        if _as_uuid(row_id) != new_id:
            return None  # folded into the live incident
        incident = Incident(**values)
        incident._state.adding = False
        metrics.INCIDENTS.labels(str(event.kind), "opened").inc()
        log.info(
            "notifications.incident_opened",
            incident=str(new_id),
            kind=str(event.kind),
            fingerprint=incident.fingerprint,
        )
        from notifications import plans

        plans.opened(incident)
    return incident


def _fold_only(event: Event) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _FOLD_SQL,
            [_prep("last_seen_at", _seen_at(event)), event.fingerprint[:300]],
        )


def _count_in_window(event: Event) -> int:
    window = max(1.0, float(event.spec.window()))
    key = f"notify:spike:{event.fingerprint}:{int(event.occurred_at // window)}"
    cache.add(key, 0, timeout=int(window * 2))
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr, or the cache is unavailable
        cache.set(key, 1, timeout=int(window * 2))
        return 1


# -- resolving -----------------------------------------------------------------------------------


def resolve(fingerprints: list[str], *, by: str, incident_id=None) -> list[Incident]:
    """Resolve the live incidents with these fingerprints; returns those this call resolved
    (each resolved exactly once, whoever else tries at the same moment)."""
    if not fingerprints:
        return []
    now = timezone.now()
    marks = ", ".join(["%s"] * len(fingerprints))
    sql = (  # constants and placeholders; values are parameters
        f'UPDATE "{_TABLE}" SET "state" = %s, "resolved_at" = %s, "resolved_by" = %s '  # noqa: S608
        f'WHERE "fingerprint" IN ({marks}) AND {_LIVE_SQL}'
    )
    params = [Incident.State.RESOLVED, _prep("resolved_at", now), by[:150], *fingerprints]
    if incident_id is not None:
        sql += ' AND "id" = %s'
        params.append(_prep("id", incident_id))
    sql += ' RETURNING "id"'
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = [_as_uuid(row[0]) for row in cursor.fetchall()]
        if not ids:
            return []
        resolved = list(Incident.objects.filter(pk__in=ids))
        from notifications import plans

        for incident in resolved:
            metrics.INCIDENTS.labels(incident.kind, "resolved").inc()
            log.info(
                "notifications.incident_resolved",
                incident=str(incident.pk),
                kind=incident.kind,
                by=by,
            )
            plans.resolved(incident)
    return resolved


def resolve_by_hand(incident: Incident, *, user: str) -> bool:
    """An operator (or the tenant, for its own) resolves a live incident."""
    done = resolve([incident.fingerprint], by=f"by hand: {user}", incident_id=incident.pk)
    return bool(done)


def acknowledge(incident: Incident, *, user: str) -> bool:
    """Somebody is on it: the incident stays live (and keeps folding) but no reminders."""
    updated = Incident.objects.filter(pk=incident.pk, state=Incident.State.OPEN).update(
        state=Incident.State.ACKNOWLEDGED,
        acknowledged_at=timezone.now(),
        acknowledged_by=user[:150],
    )
    return bool(updated)


# -- the maintenance schedule --------------------------------------------------------------------


def remind(*, now=None, limit: int = 500) -> int:
    """Open (not acknowledged) incidents not notified for CASTIEL_NOTIFY_RENOTIFY_MINUTES get a
    reminder; the claim is a conditional UPDATE, so a reminder is planned once per interval."""
    minutes = settings.CASTIEL_NOTIFY_RENOTIFY_MINUTES
    if minutes <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=minutes)
    due = Incident.objects.filter(state=Incident.State.OPEN, last_notified_at__lte=cutoff)
    sent = 0
    from notifications import plans

    for incident in due.order_by("last_notified_at")[:limit]:
        with transaction.atomic():
            claimed = Incident.objects.filter(
                pk=incident.pk,
                state=Incident.State.OPEN,
                last_notified_at=incident.last_notified_at,
            ).update(last_notified_at=now, reminders_sent=incident.reminders_sent + 1)
            if not claimed:
                continue
            incident.last_notified_at = now
            incident.reminders_sent += 1
            plans.reminder(incident)
            sent += 1
    return sent


def auto_resolve(*, now=None) -> int:
    """Kinds without a recovery event of their own resolve after a quiet period."""
    now = now or timezone.now()
    resolved = 0
    for kind, spec in CATALOGUE.items():
        if spec.auto_resolve_minutes is None:
            continue
        minutes = float(spec.auto_resolve_minutes())
        quiet = Incident.objects.filter(
            kind=str(kind),
            state__in=Incident.LIVE,
            last_seen_at__lte=now - timedelta(minutes=minutes),
        ).values_list("fingerprint", flat=True)
        for fingerprint in list(quiet[:500]):
            resolved += len(resolve([fingerprint], by=f"auto: no event for {minutes:g} min"))
    return resolved


def _uuid_or_none(value):
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
