"""Notification events: the typed catalogue, and ``emit`` — raised where the fact happens.

Every app may raise an event (this module imports no app); the ``notifications`` app, which
sits above them all, registers its sink at start-up (``NotificationsConfig.ready``) and turns
events into incidents, alerts and digests (docs/notifications.md).

An event names its **kind** (the catalogue below), a **severity**, the **tenant** it concerns
(None for platform events: the limiter, workers, notification channels), its **subject**
(the sync task, credential, registration, cluster … it is about) and the **fingerprint**
``kind:tenant:subject-type:subject-id``: events with the same fingerprint fold into one
incident. A *recovery* kind (``Spec.resolves``) resolves the incidents of the kinds it names
for the same tenant and subject.

Cost and safety on the hot paths:

* with no sink registered (a process that did not load the notifications app) ``emit`` returns
  at once; otherwise it builds one small frozen dataclass and hands it on;
* ``emit`` never raises into its caller: a malformed call or a failing sink is logged;
* raise an event on a *transition* (a task starts failing, a credential becomes
  ``reauth_required``, the limiter loses Redis) or on a failure — never on every success:
  a recovery event costs the sink one indexed ``UPDATE``.

Transactions: an event raised inside ``transaction.atomic`` is handed to the sinks **after that
transaction commits**, and **dropped if it rolls back** (also when only the savepoint it was
raised in rolls back): the fact it reports was never recorded, so nobody is told about it. The
sink writes the incident in a transaction of its own, so a storm of events on one fingerprint
never holds a lock inside the work that raised them. An event raised outside a transaction is
handled at once, in the caller's thread.

Over 400 lines on purpose: the catalogue is one table, each kind's title, severity, subject
and thresholds side by side, so a reviewer sees every notification Castiel can send.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from castiel.observability.logging import get_logger

log = get_logger(__name__)


class Severity(enum.IntEnum):
    INFO = 10
    WARNING = 20
    ERROR = 30
    CRITICAL = 40

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value) -> Severity:
        """``Severity`` from an int, a member or its name (``"error"``)."""
        if isinstance(value, str) and not value.isdigit():
            return cls[value.upper()]
        return cls(int(value))


class Kind(enum.StrEnum):
    # Sync (syncing/inbound): raised by the worker when a run ends.
    SYNC_FAILING = "sync.failing"
    SYNC_RECOVERED = "sync.recovered"
    SYNC_OVER_BUDGET = "sync.over_budget"
    SYNC_WITHIN_BUDGET = "sync.within_budget"
    CONFLICTS_WAITING = "sync.conflicts_waiting"
    CONFLICTS_CLEARED = "sync.conflicts_cleared"
    # Credentials (credentials/): the subject is the integration, so a reconnect resolves.
    CREDENTIAL_REAUTH_REQUIRED = "credential.reauth_required"
    CREDENTIAL_EXPIRING = "credential.expiring"
    CREDENTIAL_REFRESH_FAILING = "credential.refresh_failing"
    CREDENTIAL_HEALTHY = "credential.healthy"
    # Outbound push (syncing/outbound).
    DEAD_LETTER_CREATED = "outbound.dead_letter"
    DEAD_LETTERS_CLEARED = "outbound.dead_letters_cleared"
    OUTBOUND_BACKLOG = "outbound.backlog"
    OUTBOUND_BACKLOG_CLEARED = "outbound.backlog_cleared"
    # Webhooks (webhooks/).
    WEBHOOK_SIGNATURES_REJECTED = "webhook.signatures_rejected"
    WEBHOOK_PROCESSING_FAILING = "webhook.processing_failing"
    WEBHOOK_PROCESSING_RECOVERED = "webhook.processing_recovered"
    # Rate limits (ratelimit/).
    QUOTA_EXHAUSTED = "ratelimit.quota_exhausted"
    QUOTA_RESTORED = "ratelimit.quota_restored"
    LIMITER_DEGRADED = "ratelimit.degraded"
    LIMITER_RECOVERED = "ratelimit.recovered"
    # Workers (castiel/observability).
    WORKER_KIND_DOWN = "worker.kind_down"
    WORKER_KIND_UP = "worker.kind_up"
    # Tenant application events (``Spec.incident`` False): delivered to the tenant's signed
    # webhooks as they happen (notifications/event_webhooks.py), never folded into incidents.
    SYNC_COMPLETED = "sync.completed"
    SYNC_FAILED = "sync.failed"
    RECORDS_CHANGED = "records.changed"
    WEBHOOK_RECEIVED = "webhook.received"
    # Notifications themselves.
    CHANNEL_FAILING = "notifications.channel_failing"
    CHANNEL_RECOVERED = "notifications.channel_recovered"
    TEST = "notifications.test"


@dataclass(frozen=True)
class Spec:
    """What the catalogue says about one kind."""

    kind: Kind
    title: str
    severity: Severity
    subject_type: str
    platform: bool = False  # raised with tenant=None only
    resolves: tuple[Kind, ...] = ()  # a recovery kind: the problem kinds it resolves
    # A spike: an incident opens only once ``threshold()`` events arrived within ``window``
    # seconds (settings-driven, so read when needed).
    threshold: Callable[[], int] | None = None
    window: Callable[[], float] | None = None
    # Kinds without a natural recovery event resolve after this long without a new event.
    auto_resolve_minutes: Callable[[], float] | None = None
    # Events below this are not an incident yet (e.g. fewer consecutive failures than set).
    accepts: Callable[[Mapping[str, Any]], bool] | None = None
    description: str = ""
    # False for the tenant application events: a fact for a machine (every one is delivered),
    # not a problem for a person (folded by fingerprint, resolved once).
    incident: bool = True

    @property
    def is_recovery(self) -> bool:
        return bool(self.resolves)


def _setting(name: str, default):
    return lambda: getattr(settings, name, default)


def _at_least(detail: str, setting: str, default) -> Callable[[Mapping[str, Any]], bool]:
    def accepts(details: Mapping[str, Any]) -> bool:
        try:
            return float(details.get(detail, 0)) >= float(getattr(settings, setting, default))
        except (TypeError, ValueError):
            return True  # a malformed detail is still worth telling someone about

    return accepts


_S = Severity
CATALOGUE: dict[Kind, Spec] = {
    spec.kind: spec
    for spec in (
        Spec(
            Kind.SYNC_FAILING,
            "Sync task failing",
            _S.ERROR,
            "synctask",
            accepts=_at_least("consecutive_failures", "CASTIEL_NOTIFY_SYNC_FAILURES", 3),
            description="A sync task failed this many times in a row "
            "(details.consecutive_failures ≥ CASTIEL_NOTIFY_SYNC_FAILURES).",
        ),
        Spec(
            Kind.SYNC_RECOVERED,
            "Sync task recovered",
            _S.INFO,
            "synctask",
            resolves=(Kind.SYNC_FAILING,),
        ),
        Spec(
            Kind.SYNC_OVER_BUDGET,
            "Sync run over its budget",
            _S.WARNING,
            "synctask",
            description="A run stopped at CASTIEL_SYNC_RUN_BUDGET_SECONDS and re-queued itself.",
        ),
        Spec(
            Kind.SYNC_WITHIN_BUDGET,
            "Sync run within its budget again",
            _S.INFO,
            "synctask",
            resolves=(Kind.SYNC_OVER_BUDGET,),
        ),
        Spec(
            Kind.CONFLICTS_WAITING,
            "Conflicts waiting for a human",
            _S.WARNING,
            "integration",
            description="Open conflicts of an integration (details.open).",
        ),
        Spec(
            Kind.CONFLICTS_CLEARED,
            "No conflict waiting any more",
            _S.INFO,
            "integration",
            resolves=(Kind.CONFLICTS_WAITING,),
        ),
        Spec(
            Kind.CREDENTIAL_REAUTH_REQUIRED,
            "Credential needs re-authorisation",
            _S.CRITICAL,
            "integration",
            description="The provider rejected the refresh (invalid_grant): syncs and pushes of "
            "the integration are paused until it is connected again.",
        ),
        Spec(
            Kind.CREDENTIAL_EXPIRING,
            "Credential expiring",
            _S.WARNING,
            "integration",
            description="A credential that cannot renew itself expires within "
            "CASTIEL_CREDENTIAL_EXPIRY_WARNING_DAYS.",
        ),
        Spec(
            Kind.CREDENTIAL_REFRESH_FAILING,
            "Token refresh failing",
            _S.ERROR,
            "integration",
            accepts=_at_least("failures", "CASTIEL_NOTIFY_REFRESH_FAILURES", 3),
            description="Token refresh failed this many times in a row "
            "(details.failures ≥ CASTIEL_NOTIFY_REFRESH_FAILURES).",
        ),
        Spec(
            Kind.CREDENTIAL_HEALTHY,
            "Credential healthy again",
            _S.INFO,
            "integration",
            resolves=(
                Kind.CREDENTIAL_REAUTH_REQUIRED,
                Kind.CREDENTIAL_EXPIRING,
                Kind.CREDENTIAL_REFRESH_FAILING,
            ),
        ),
        Spec(
            Kind.DEAD_LETTER_CREATED,
            "Dead letters",
            _S.ERROR,
            "integration",
            description="A push became a dead letter; one incident per integration counts them.",
        ),
        Spec(
            Kind.DEAD_LETTERS_CLEARED,
            "Dead letters cleared",
            _S.INFO,
            "integration",
            resolves=(Kind.DEAD_LETTER_CREATED,),
        ),
        Spec(
            Kind.OUTBOUND_BACKLOG,
            "Outbound backlog growing old",
            _S.WARNING,
            "integration",
            accepts=_at_least("age_seconds", "CASTIEL_NOTIFY_BACKLOG_SECONDS", 900),
            description="The oldest pending push is older than CASTIEL_NOTIFY_BACKLOG_SECONDS.",
        ),
        Spec(
            Kind.OUTBOUND_BACKLOG_CLEARED,
            "Outbound backlog cleared",
            _S.INFO,
            "integration",
            resolves=(Kind.OUTBOUND_BACKLOG,),
        ),
        Spec(
            Kind.WEBHOOK_SIGNATURES_REJECTED,
            "Webhook signature rejections spiking",
            _S.WARNING,
            "webhookregistration",
            threshold=_setting("CASTIEL_NOTIFY_SIGNATURE_SPIKE", 20),
            window=_setting("CASTIEL_NOTIFY_SIGNATURE_SPIKE_SECONDS", 300),
            auto_resolve_minutes=lambda: (
                getattr(settings, "CASTIEL_NOTIFY_SIGNATURE_SPIKE_SECONDS", 300) * 2 / 60
            ),
            description="Many deliveries to one registration failed their signature check "
            "(a wrong secret, or an attack); resolves after a quiet period.",
        ),
        Spec(
            Kind.WEBHOOK_PROCESSING_FAILING,
            "Webhook processing failing",
            _S.ERROR,
            "webhookregistration",
            description="A stored webhook event failed processing for good.",
        ),
        Spec(
            Kind.WEBHOOK_PROCESSING_RECOVERED,
            "Webhook processing recovered",
            _S.INFO,
            "webhookregistration",
            resolves=(Kind.WEBHOOK_PROCESSING_FAILING,),
        ),
        Spec(
            Kind.QUOTA_EXHAUSTED,
            "Provider quota exhausted",
            _S.WARNING,
            "integration",
            auto_resolve_minutes=_setting("CASTIEL_NOTIFY_QUIET_RESOLVE_MINUTES", 30),
            description="The provider's quota is used up: the limiter blocks the integration "
            "until it resets.",
        ),
        Spec(
            Kind.QUOTA_RESTORED,
            "Provider quota available again",
            _S.INFO,
            "integration",
            resolves=(Kind.QUOTA_EXHAUSTED,),
        ),
        Spec(
            Kind.LIMITER_DEGRADED,
            "Rate limiter degraded",
            _S.ERROR,
            "ratelimiter",
            platform=True,
            description="The limiter lost its Redis backend; processes limit locally.",
        ),
        Spec(
            Kind.LIMITER_RECOVERED,
            "Rate limiter recovered",
            _S.INFO,
            "ratelimiter",
            platform=True,
            resolves=(Kind.LIMITER_DEGRADED,),
        ),
        Spec(
            Kind.WORKER_KIND_DOWN,
            "No live worker",
            _S.CRITICAL,
            "cluster",
            platform=True,
            description="No worker of this kind (cluster) has beaten within "
            "CASTIEL_HEARTBEAT_STALE_AFTER.",
        ),
        Spec(
            Kind.WORKER_KIND_UP,
            "Workers back",
            _S.INFO,
            "cluster",
            platform=True,
            resolves=(Kind.WORKER_KIND_DOWN,),
        ),
        Spec(
            Kind.CHANNEL_FAILING,
            "Notification channel failing",
            _S.ERROR,
            "channel",
            platform=True,
            description="Deliveries to a notification channel keep failing.",
        ),
        Spec(
            Kind.CHANNEL_RECOVERED,
            "Notification channel recovered",
            _S.INFO,
            "channel",
            platform=True,
            resolves=(Kind.CHANNEL_FAILING,),
        ),
        Spec(Kind.TEST, "Test notification", _S.INFO, "channel"),
        Spec(
            Kind.SYNC_COMPLETED,
            "Sync run completed",
            _S.INFO,
            "synctask",
            incident=False,
            description="A sync run succeeded (details.run_id): its counts and the change-feed "
            "cursor of its changes.",
        ),
        Spec(
            Kind.SYNC_FAILED,
            "Sync run failed",
            _S.ERROR,
            "synctask",
            incident=False,
            description="A sync run failed (details.run_id, code, consecutive_failures); "
            "every failure, not only past the threshold of sync.failing.",
        ),
        Spec(
            Kind.RECORDS_CHANGED,
            "Records changed",
            _S.INFO,
            "synctask",
            incident=False,
            description="A sync run (any ending) created, updated or deleted records "
            "(details.run_id): one event per run, never one per record.",
        ),
        Spec(
            Kind.WEBHOOK_RECEIVED,
            "Webhook received",
            _S.INFO,
            "webhookregistration",
            incident=False,
            description="A provider's webhook was received and processed "
            "(details.webhook_event_id, status).",
        ),
    )
}
assert set(CATALOGUE) == set(Kind), "every kind needs its Spec"


@dataclass(frozen=True, slots=True)
class Subject:
    """What an event is about: a type from the catalogue, an id, and a label for people."""

    type: str
    id: str
    label: str = ""

    @classmethod
    def of(cls, obj, label: str | None = None) -> Subject:
        """The subject for a model instance (type = its model name)."""
        return cls(obj._meta.model_name, str(obj.pk), str(obj) if label is None else label)


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    severity: Severity
    tenant_id: str | None
    subject: Subject
    integration_id: str | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: float = 0.0

    @property
    def spec(self) -> Spec:
        return CATALOGUE[self.kind]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.kind, self.tenant_id, self.subject)

    def resolved_fingerprints(self) -> list[str]:
        """For a recovery event, the fingerprints of the incidents it resolves."""
        return [fingerprint(k, self.tenant_id, self.subject) for k in self.spec.resolves]


def fingerprint(kind: Kind | str, tenant_id: str | None, subject: Subject) -> str:
    return f"{kind}:{tenant_id or '-'}:{subject.type}:{subject.id}"


Sink = Callable[[Event], None]
_sinks: tuple[Sink, ...] = ()


def register_sink(sink: Sink) -> None:
    """Add ``sink`` (idempotent). Called from an app's ``ready()``."""
    global _sinks
    if sink not in _sinks:
        _sinks = (*_sinks, sink)


def unregister_sink(sink: Sink) -> None:
    global _sinks
    _sinks = tuple(s for s in _sinks if s is not sink)


def sinks() -> tuple[Sink, ...]:
    return _sinks


def _id(value) -> str | None:
    if value is None or value == "":
        return None
    return str(getattr(value, "pk", value))


def emit(
    kind: Kind,
    *,
    subject: Subject | tuple,
    tenant=None,
    integration=None,
    severity: Severity | None = None,
    message: str = "",
    details: Mapping[str, Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Event | None:
    """Raise ``kind`` about ``subject``; returns the event (None when dropped). Never raises.

    ``tenant`` and ``integration`` are model instances or ids (None for platform events);
    ``subject`` is a :class:`Subject` or ``(type, id[, label])``.
    """
    if not _sinks:
        return None
    try:
        spec = CATALOGUE[kind]
        if not isinstance(subject, Subject):
            subject = Subject(*(str(part) for part in subject))
        if subject.type != spec.subject_type:
            raise ValueError(f"{kind} is about a {spec.subject_type}, not a {subject.type}")
        tenant_id = _id(tenant)
        if spec.platform and tenant_id is not None:
            raise ValueError(f"{kind} is a platform event: raise it without a tenant")
        details = dict(details or {})
        if spec.accepts is not None and not spec.accepts(details):
            return None
        event = Event(
            kind=spec.kind,
            severity=spec.severity if severity is None else Severity(severity),
            tenant_id=tenant_id,
            subject=subject,
            integration_id=_id(integration),
            message=str(message)[:2000],
            details=details,
            occurred_at=time.time(),
        )
    except Exception:
        log.exception("events.emit_refused", kind=str(kind))
        return None
    if connections[using].in_atomic_block:
        transaction.on_commit(partial(_dispatch, event), using=using, robust=True)
    else:
        _dispatch(event)
    return event


def _dispatch(event: Event) -> None:
    for sink in _sinks:
        try:
            sink(event)
        except Exception:  # a notification problem must never fail the work that raised it
            log.exception("events.sink_failed", kind=str(event.kind), sink=_name(sink))


def _name(sink: Sink) -> str:
    return getattr(sink, "__qualname__", repr(sink))
