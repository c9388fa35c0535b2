"""Events fold into incidents by fingerprint; recoveries resolve them; a storm is one incident."""

from __future__ import annotations

import pytest
from django.db import transaction

from castiel import events
from castiel.events import Kind, Severity, Subject, emit
from notifications import incidents
from notifications.models import Delivery, Incident
from tests.notifications.factories import make_channel, make_subscription

pytestmark = [pytest.mark.embedded]

TASK = Subject("synctask", "42", "contacts (Demo CRM)")


def fail(tenant, n=3, **kwargs):
    return emit(
        Kind.SYNC_FAILING,
        tenant=tenant,
        subject=TASK,
        message=kwargs.pop("message", "HTTP 503"),
        details={"consecutive_failures": n},
        **kwargs,
    )


@pytest.mark.django_db
def test_events_with_one_fingerprint_fold_into_one_incident(tenant, committed):
    for n in (3, 4, 5):
        committed(lambda n=n: fail(tenant, n, message=f"failure {n}"))
    incident = Incident.objects.get()
    assert incident.state == "open" and incident.occurrences == 3
    assert incident.fingerprint == f"sync.failing:{tenant.pk}:synctask:42"
    assert incident.message == "failure 5" and incident.details == {"consecutive_failures": 5}
    assert incident.first_seen_at < incident.last_seen_at
    assert incident.severity == Severity.ERROR and incident.tenant_id == tenant.pk


@pytest.mark.django_db
def test_a_recovery_resolves_and_the_next_failure_opens_a_new_incident(tenant, committed):
    committed(lambda: fail(tenant))
    committed(lambda: emit(Kind.SYNC_RECOVERED, tenant=tenant, subject=TASK))
    first = Incident.objects.get()
    assert first.state == "resolved" and first.resolved_by == "recovery: sync.recovered"
    committed(lambda: emit(Kind.SYNC_RECOVERED, tenant=tenant, subject=TASK))  # nothing to do
    committed(lambda: fail(tenant))
    assert Incident.objects.count() == 2
    assert Incident.objects.get(state="open").pk != first.pk


@pytest.mark.django_db
def test_fewer_consecutive_failures_than_configured_open_nothing(tenant, committed, settings):
    settings.CASTIEL_NOTIFY_SYNC_FAILURES = 3
    assert committed(lambda: fail(tenant, 2)) is None
    assert not Incident.objects.exists()
    committed(lambda: fail(tenant, 3))
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_severity_only_rises(tenant, committed):
    committed(lambda: fail(tenant, severity=Severity.CRITICAL))
    committed(lambda: fail(tenant, severity=Severity.WARNING))
    assert Incident.objects.get().severity == Severity.CRITICAL


@pytest.mark.django_db
def test_an_event_whose_transaction_rolls_back_is_dropped(
    tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                assert fail(tenant) is not None
                raise RuntimeError("the work failed to record its failure")
    assert callbacks == [] and not Incident.objects.exists()


@pytest.mark.django_db
def test_inside_a_transaction_the_incident_waits_for_the_commit(
    tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        fail(tenant)
        assert not Incident.objects.exists()
    assert len(callbacks) == 1
    callbacks[0]()
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_emit_never_raises_into_its_caller(tenant, committed, caplog):
    # A subject of the wrong type, a platform event with a tenant, a sink that fails.
    assert emit(Kind.SYNC_FAILING, tenant=tenant, subject=("integration", "1")) is None
    assert emit(Kind.LIMITER_DEGRADED, tenant=tenant, subject=("ratelimiter", "redis")) is None

    def broken(event):
        raise RuntimeError("sink down")

    events.register_sink(broken)
    try:
        assert committed(lambda: fail(tenant)) is not None
    finally:
        events.unregister_sink(broken)
    assert Incident.objects.count() == 1  # the other sink still ran


@pytest.mark.django_db
def test_without_a_sink_emit_returns_at_once(tenant, monkeypatch):
    monkeypatch.setattr(events, "_sinks", ())
    assert fail(tenant) is None


@pytest.mark.django_db
def test_signature_rejections_open_an_incident_only_past_the_spike(tenant, committed, settings):
    settings.CASTIEL_NOTIFY_SIGNATURE_SPIKE = 5
    registration = Subject("webhookregistration", "reg-1", "GitHub")
    for _ in range(4):
        committed(
            lambda: emit(Kind.WEBHOOK_SIGNATURES_REJECTED, tenant=tenant, subject=registration)
        )
    assert not Incident.objects.exists()
    for _ in range(3):
        committed(
            lambda: emit(Kind.WEBHOOK_SIGNATURES_REJECTED, tenant=tenant, subject=registration)
        )
    incident = Incident.objects.get()
    assert incident.occurrences == 7  # the five that made the spike, and two more


@pytest.mark.django_db
def test_kinds_without_a_recovery_resolve_after_a_quiet_period(tenant, committed, settings):
    settings.CASTIEL_NOTIFY_QUIET_RESOLVE_MINUTES = 30
    integration = Subject("integration", "i-1", "CRM")
    committed(lambda: emit(Kind.QUOTA_EXHAUSTED, tenant=tenant, subject=integration))
    incident = Incident.objects.get()
    assert incidents.auto_resolve(now=incident.last_seen_at + _minutes(29)) == 0
    assert incidents.auto_resolve(now=incident.last_seen_at + _minutes(31)) == 1
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_by.startswith("auto")


@pytest.mark.django_db
def test_acknowledged_incidents_keep_folding_but_get_no_reminders(tenant, committed, settings):
    settings.CASTIEL_NOTIFY_RENOTIFY_MINUTES = 60
    channel = make_channel(tenant)
    make_subscription(tenant, channel)
    committed(lambda: fail(tenant))
    incident = Incident.objects.get()
    later = incident.last_notified_at + _minutes(61)
    assert incidents.acknowledge(incident, user="ada")
    committed(lambda: fail(tenant))
    incident.refresh_from_db()
    assert incident.state == "acknowledged" and incident.occurrences == 2
    assert incidents.remind(now=later) == 0
    Incident.objects.filter(pk=incident.pk).update(state="open")
    assert incidents.remind(now=later) == 1
    assert incidents.remind(now=later) == 0  # once per interval
    kinds = list(Delivery.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["alert", "reminder"]


def _minutes(n):
    from datetime import timedelta

    return timedelta(minutes=n)


@pytest.mark.django_db
@pytest.mark.parametrize("cache_down", [False, True])
def test_an_integration_subject_is_named_even_with_the_cache_down(
    tenant, committed, monkeypatch, cache_down
):
    from tests.factories import IntegrationFactory

    integration = IntegrationFactory(tenant=tenant, name="Acme CRM")
    if cache_down:  # Redis lost: the lookup goes to the database, the incident still folds

        def unreachable(*args, **kwargs):
            raise ConnectionError("cache unreachable")

        monkeypatch.setattr(incidents.cache, "get_or_set", unreachable)
    committed(
        lambda: emit(
            Kind.QUOTA_EXHAUSTED,
            tenant=tenant,
            integration=integration.pk,
            subject=("integration", str(integration.pk)),
            details={"blocked_for_s": 120},
        )
    )
    assert Incident.objects.get().subject_label == "Acme CRM"
