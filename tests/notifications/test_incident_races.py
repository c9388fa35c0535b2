"""Races on PostgreSQL: many writers folding one fingerprint make one incident, one alert and
one resolution (not part of the embedded run: SQLite has one writer by construction)."""

from __future__ import annotations

import sys
import time

import pytest

from castiel.events import Kind, emit
from notifications.models import Delivery, Incident, Subscription
from tests.notifications.factories import make_channel, make_subscription
from tests.notifications.support import SLACK_PATH
from tests.notifications.test_incidents import TASK, fail
from tests.support.processes import Process, process_env
from tests.support.threads import in_threads


@pytest.mark.django_db(transaction=True)
def test_racing_events_make_one_incident_and_one_alert(tenant, postgres):
    channel = make_channel(tenant)
    make_subscription(tenant, channel)
    in_threads(8, lambda: [fail(tenant) for _ in range(25)])
    incident = Incident.objects.get()
    assert incident.occurrences == 200
    assert Delivery.objects.filter(kind="alert").count() == 1
    in_threads(8, lambda: emit(Kind.SYNC_RECOVERED, tenant=tenant, subject=TASK))
    assert Delivery.objects.filter(kind="resolved").count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_storm_of_10000_failures_on_4_processes_is_one_incident_one_alert_one_resolution(
    tenant, postgres, tmp_path, chat, settings
):
    """10,000 failure events for one fingerprint from 4 processes at once (PostgreSQL) →
    exactly one open incident counting them all, one alert; then recoveries from 4 processes
    → one resolution; the fake Slack receives exactly those two messages."""
    from notifications import delivery, services

    channel, _ = services.channel_create(
        tenant=tenant, name="ops", type="slack", url=chat.slack_url
    )
    Subscription.objects.create(tenant=tenant, name="all", channel=channel, min_severity=10)

    def storm(what: str, count: int) -> None:
        start = time.time() + 4
        procs = [
            Process(
                [
                    sys.executable,
                    "-m",
                    "tests.notifications.storm",
                    str(count),
                    what,
                    str(start),
                    str(tenant.pk),
                ],
                env=process_env(tmp_path),
                log_path=tmp_path / f"storm-{what}-{n}.log",
            )
            for n in range(4)
        ]
        try:
            for proc in procs:
                proc.wait_for(
                    lambda proc=proc: "done" in proc.output, timeout=90, what=f"{what} storm"
                )
        finally:
            for proc in procs:
                proc.stop()

    started = time.monotonic()
    storm("fail", 2500)
    incident = Incident.objects.get()
    assert incident.state == "open" and incident.occurrences == 10_000
    assert list(Delivery.objects.values_list("kind", flat=True)) == ["alert"]
    storm("recover", 50)
    incident.refresh_from_db()
    assert incident.state == "resolved"
    assert sorted(Delivery.objects.values_list("kind", flat=True)) == ["alert", "resolved"]
    settings.CASTIEL_NOTIFY_MAX_INLINE_WAIT = 3  # Slack's one message per second
    delivery.work_channel(channel.pk)
    bodies = chat.bodies(SLACK_PATH)
    assert [b["text"] for b in bodies] == [
        "Sync task failing: contacts (storm)",
        "Resolved: Sync task failing: contacts (storm)",
    ]
    assert time.monotonic() - started < 60
