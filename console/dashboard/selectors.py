"""The operations dashboard's figures: a few aggregate queries each, over indexed columns.

Every selector takes ``now`` (tests pin it) and an optional ``tenant_id`` (an operator looking
at one tenant). Time series cover the last ``HOURS`` hours in hourly buckets, oldest first,
with empty hours filled in. Costs, for the record (10k runs, 100k records, PostgreSQL): the
hourly series are one GROUP BY each over an index range (``syncrun_started``,
``webhook_event_received``); counts use the status indexes; only the rate-limit headroom reads
per integration (one limiter read each, for at most ``HEADROOM_INTEGRATIONS``).

Over 400 lines on purpose: one selector per panel, kept together so the dashboard's whole
query cost is reviewed in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from castiel.observability.logging import get_logger

log = get_logger(__name__)

HOURS = 24
HEADROOM_INTEGRATIONS = 12
LIST_LIMIT = 8
EXPIRY_WINDOW = timedelta(days=7)


@dataclass
class Series:
    """Hourly buckets: ``hours`` (bucket starts) and one list of values per series name."""

    hours: list[datetime]
    values: dict[str, list[int]]

    def total(self, name: str) -> int:
        return sum(self.values.get(name, []))

    def as_dict(self) -> dict:
        return {"hours": [h.isoformat() for h in self.hours], "values": self.values}


def hour_buckets(now: datetime, hours: int = HOURS) -> list[datetime]:
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=hours - 1 - i) for i in range(hours)]


def _series(rows, buckets: list[datetime], names: tuple[str, ...], key=None) -> Series:
    """Fill ``rows`` ({"hour", <name>: n, …} or {"hour", key: name, "n"}) into buckets."""
    index = {hour: i for i, hour in enumerate(buckets)}
    values = {name: [0] * len(buckets) for name in names}
    for row in rows:
        hour = row["hour"]
        if hour is None:
            continue
        if timezone.is_naive(hour):
            hour = timezone.make_aware(hour, UTC)
        i = index.get(hour)
        if i is None:
            continue
        if key is None:
            for name in names:
                values[name][i] += row.get(name) or 0
        else:
            name = row[key] if row[key] in values else names[-1]
            values[name][i] += row["n"]
    return Series(hours=buckets, values=values)


def _scoped(queryset, tenant_id, field_name: str = "tenant_id"):
    return queryset.filter(**{field_name: tenant_id}) if tenant_id else queryset


# -- sync ------------------------------------------------------------------------------------


def records_per_hour(*, now: datetime, tenant_id=None) -> Series:
    """Records created, updated and deleted by sync runs, by the hour the run started."""
    from syncing.models import SyncRun

    buckets = hour_buckets(now)
    rows = (
        _scoped(SyncRun.objects.filter(started_at__gte=buckets[0]), tenant_id)
        .annotate(hour=TruncHour("started_at"))
        .values("hour")
        .annotate(created=Sum("created"), updated=Sum("updated"), deleted=Sum("deleted"))
        .order_by()
    )
    return _series(rows, buckets, ("created", "updated", "deleted"))


def runs_per_hour(*, now: datetime, tenant_id=None) -> Series:
    from syncing.models import SyncRun

    buckets = hour_buckets(now)
    rows = (
        _scoped(SyncRun.objects.filter(started_at__gte=buckets[0]), tenant_id)
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    # "other": running, deferred (continues later) and lost (resumed) runs.
    return _series(rows, buckets, ("succeeded", "failed", "other"), key="status")


def recent_failures(*, now: datetime, tenant_id=None, limit: int = LIST_LIMIT) -> list[dict]:
    from syncing.models import SyncRun

    runs = (
        _scoped(SyncRun.objects.filter(status=SyncRun.Status.FAILED), tenant_id)
        .filter(started_at__gte=now - timedelta(hours=HOURS))
        .select_related("task", "task__integration")
        .order_by("-started_at")[:limit]
    )
    return [
        {
            "id": str(run.pk),
            "task": str(run.task),
            "started_at": run.started_at,
            "error_code": run.error_code,
            "error": (run.error_summary or "").split("\n", 1)[0][:160],
        }
        for run in runs
    ]


# -- queues and backlogs ---------------------------------------------------------------------


@dataclass
class Backlog:
    """Messages waiting in each worker cluster's queue, and the work waiting in the database
    (the source of truth: a message only wakes a worker)."""

    clusters: dict[str, int | None] = field(default_factory=dict)
    sync_tasks_queued: int = 0
    sync_tasks_running: int = 0
    outbound_pending: int = 0
    webhook_events_pending: int = 0


def backlog(*, now: datetime, tenant_id=None) -> Backlog:
    from castiel.queue import all_clusters, queue_depths
    from syncing.models import OutboundChange, SyncTask
    from webhooks.models import WebhookEvent

    depths = queue_depths()
    tasks = dict(
        _scoped(SyncTask.objects.filter(status__in=["queued", "running"]), tenant_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Backlog(
        # None: the broker did not answer (castiel.queue logs why).
        clusters={cluster: depths.get(cluster) for cluster in all_clusters()},
        sync_tasks_queued=tasks.get("queued", 0),
        sync_tasks_running=tasks.get("running", 0),
        outbound_pending=_scoped(
            OutboundChange.objects.filter(status=OutboundChange.Status.PENDING), tenant_id
        ).count(),
        webhook_events_pending=_scoped(
            WebhookEvent.objects.filter(status__in=WebhookEvent.PENDING_STATUSES), tenant_id
        ).count(),
    )


# -- webhooks --------------------------------------------------------------------------------


def webhooks_per_hour(*, now: datetime, tenant_id=None) -> Series:
    from webhooks.models import WebhookEvent

    buckets = hour_buckets(now)
    rows = (
        _scoped(WebhookEvent.objects.filter(received_at__gte=buckets[0]), tenant_id)
        .annotate(hour=TruncHour("received_at"))
        .values("hour", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    # Handshakes (URL verification) count with the accepted ones: the provider was answered.
    series = _series(
        rows, buckets, ("accepted", "duplicate", "rejected", "handshake"), key="outcome"
    )
    handshakes = series.values.pop("handshake")
    series.values["accepted"] = [
        a + h for a, h in zip(series.values["accepted"], handshakes, strict=True)
    ]
    return series


def webhook_reject_reasons(
    *, now: datetime, tenant_id=None, limit: int = 5
) -> list[tuple[str, int]]:
    from webhooks.models import WebhookEvent

    rows = (
        _scoped(
            WebhookEvent.objects.filter(
                received_at__gte=now - timedelta(hours=HOURS),
                outcome=WebhookEvent.Outcome.REJECTED,
            ),
            tenant_id,
        )
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by("-n")[:limit]
    )
    return list(rows)


# -- rate limits -----------------------------------------------------------------------------


@dataclass
class Headroom:
    integration_id: str
    name: str
    provider: str
    headroom: float  # the tightest level's share left, 0..1
    level: str  # which level that is
    used: int
    limit: int
    window: float
    multiplier: float
    blocked_for: float
    degraded: bool


def ratelimit_headroom(
    *, now: datetime, tenant_id=None, limit: int = HEADROOM_INTEGRATIONS
) -> list[Headroom]:
    """The tightest level of the integrations that synced most recently (one limiter read
    each; reading every integration of a large site on each refresh would not be cheap)."""
    from integrations.models import Integration
    from ratelimit.selectors import usage_for

    integrations = (
        _scoped(Integration.objects.filter(enabled=True), tenant_id)
        .annotate(last_run=Max("sync_tasks__last_run_at"))
        .order_by(F("last_run").desc(nulls_last=True), "name")[:limit]
    )
    found = []
    for integration in integrations:
        try:
            _policy, usage = usage_for(integration)
        except Exception:  # one broken policy must not take the dashboard down
            log.warning(
                "dashboard.headroom_unavailable", integration=str(integration.pk), exc_info=True
            )
            continue
        tightest = min(usage.levels, key=lambda level: level.headroom)
        blocked = usage.state.blocked_until
        found.append(
            Headroom(
                integration_id=str(integration.pk),
                name=integration.name,
                provider=integration.provider,
                headroom=tightest.headroom,
                level=tightest.level + (f":{tightest.operation}" if tightest.operation else ""),
                used=tightest.used,
                limit=tightest.effective_limit,
                window=tightest.limit.window,
                multiplier=usage.state.multiplier,
                blocked_for=max(0.0, blocked - usage.now) if blocked else 0.0,
                degraded=usage.degraded,
            )
        )
    return sorted(found, key=lambda h: (h.headroom, h.name))


# -- credentials -----------------------------------------------------------------------------


def credential_statuses(*, tenant_id=None) -> dict[str, int]:
    from credentials.models import Credential

    rows = (
        _scoped(Credential.objects.exclude(status="revoked"), tenant_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)


def credentials_needing_attention(
    *, now: datetime, tenant_id=None, limit: int = LIST_LIMIT
) -> list[dict]:
    """Credentials a human must act on: re-authorisation, a failing refresh, or an end date
    within a week that no refresh can move (API keys, certificates, refresh tokens)."""
    from credentials.models import Credential

    soon = now + EXPIRY_WINDOW
    needing = (
        _scoped(Credential.objects.exclude(status="revoked"), tenant_id)
        .filter(
            Q(status__in=["reauth_required", "error", "expiring"]) | Q(refresh_expires_at__lte=soon)
        )
        .select_related("integration")
        .order_by("status", "expires_at")[:limit]
    )
    return [
        {
            "id": str(c.pk),
            "integration": c.integration.name,
            "type": c.get_type_display(),
            "status": c.status,
            "expires_at": c.refresh_expires_at
            if c.refresh_expires_at and c.refresh_expires_at <= soon
            else c.expires_at,
            "reason": (c.status_reason or c.last_error or "")[:160],
        }
        for c in needing
    ]


# -- dead letters and conflicts ---------------------------------------------------------------


def dead_letters(*, now: datetime, tenant_id=None, limit: int = LIST_LIMIT) -> dict:
    from syncing.models import DeadLetter

    open_letters = _scoped(DeadLetter.objects.filter(status=DeadLetter.Status.OPEN), tenant_id)
    by_integration = (
        open_letters.values("integration__name", "integration__provider")
        .annotate(n=Count("id"))
        .order_by("-n")[:limit]
    )
    buckets = hour_buckets(now)
    created = (
        _scoped(DeadLetter.objects.filter(created_at__gte=buckets[0]), tenant_id)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(new=Count("id"))
        .order_by()
    )
    return {
        "open": open_letters.count(),
        "by_integration": [
            (row["integration__name"], row["integration__provider"], row["n"])
            for row in by_integration
        ],
        "per_hour": _series(created, buckets, ("new",)),
    }


def open_conflicts(*, tenant_id=None) -> int:
    from syncing.models import Conflict

    return _scoped(Conflict.objects.filter(status=Conflict.Status.OPEN), tenant_id).count()


# -- everything ------------------------------------------------------------------------------


@dataclass
class Figures:
    now: datetime
    records: Series
    runs: Series
    failures: list[dict]
    backlog: Backlog
    webhooks: Series
    reject_reasons: list[tuple[str, int]]
    headroom: list[Headroom]
    credential_statuses: dict[str, int]
    credentials: list[dict]
    dead_letters: dict
    open_conflicts: int

    def as_dict(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "records_per_hour": self.records.as_dict(),
            "runs_per_hour": self.runs.as_dict(),
            "recent_failures": [
                {**f, "started_at": f["started_at"].isoformat()} for f in self.failures
            ],
            "queues": asdict(self.backlog),
            "webhooks_per_hour": self.webhooks.as_dict(),
            "webhook_reject_reasons": dict(self.reject_reasons),
            "ratelimit_headroom": [asdict(h) for h in self.headroom],
            "credential_statuses": self.credential_statuses,
            "credentials_needing_attention": [
                {**c, "expires_at": c["expires_at"].isoformat() if c["expires_at"] else None}
                for c in self.credentials
            ],
            "dead_letters": {
                "open": self.dead_letters["open"],
                "by_integration": self.dead_letters["by_integration"],
                "per_hour": self.dead_letters["per_hour"].as_dict(),
            },
            "open_conflicts": self.open_conflicts,
        }


def figures(*, now: datetime | None = None, tenant_id=None) -> Figures:
    now = now or timezone.now()
    scope = {"now": now, "tenant_id": tenant_id}
    return Figures(
        now=now,
        records=records_per_hour(**scope),
        runs=runs_per_hour(**scope),
        failures=recent_failures(**scope),
        backlog=backlog(**scope),
        webhooks=webhooks_per_hour(**scope),
        reject_reasons=webhook_reject_reasons(**scope),
        headroom=ratelimit_headroom(**scope),
        credential_statuses=credential_statuses(tenant_id=tenant_id),
        credentials=credentials_needing_attention(**scope),
        dead_letters=dead_letters(**scope),
        open_conflicts=open_conflicts(tenant_id=tenant_id),
    )
