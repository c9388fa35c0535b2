"""Digests: a scripted day of events (time frozen) gives the expected digests at the expected
times; empty ones are not sent; each period is built once, however many workers try."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from castiel.events import Kind, Subject, emit
from notifications import delivery, digests, services, subscriptions
from notifications.models import Delivery, Digest, Subscription
from tests.factories import IntegrationFactory
from tests.notifications.support import SLACK_PATH, TEAMS_PATH

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; Berlin is UTC+1 (no DST change that day)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


@pytest.fixture
def clock():
    with time_machine.travel(at(0), tick=False) as traveller:
        yield traveller


def test_a_scripted_day_gives_the_expected_digests_at_the_expected_times(
    tenant, other_tenant, chat, committed, clock
):
    crm = IntegrationFactory(tenant=tenant, name="CRM")
    billing = IntegrationFactory(tenant=tenant, name="Billing")
    theirs = IntegrationFactory(tenant=other_tenant, name="Theirs")
    slack, _ = services.channel_create(
        tenant=tenant, name="digest", type="slack", url=chat.slack_url, rate_limit_per_minute=6000
    )
    teams, _ = services.channel_create(
        tenant=tenant, name="teams", type="teams", url=chat.teams_url, rate_limit_per_minute=6000
    )
    hourly = Subscription(
        tenant=tenant,
        name="hourly",
        channel=slack,
        mode="digest",
        digest_every="hourly",
        min_severity=10,
    )
    daily = Subscription(
        tenant=tenant,
        name="daily",
        channel=teams,
        mode="digest",
        digest_every="daily",
        digest_time=time(18, 0),
        timezone="Europe/Berlin",
        min_severity=10,
    )
    for subscription in (hourly, daily):
        services.schedule_digest(subscription, now=at(0))
        subscription.save()
    assert hourly.next_digest_at == at(1) and daily.next_digest_at == at(17)  # 18:00 Berlin

    def failing(tenant_, integration, task):
        return lambda: emit(
            Kind.SYNC_FAILING,
            tenant=tenant_,
            integration=integration,
            subject=Subject("synctask", task, task),
            details={"consecutive_failures": 3},
        )

    def recovered(tenant_, task):
        return lambda: emit(
            Kind.SYNC_RECOVERED, tenant=tenant_, subject=Subject("synctask", task, task)
        )

    script = {
        at(2, 10): failing(tenant, crm, "contacts"),
        at(2, 40): lambda: emit(
            Kind.CREDENTIAL_REAUTH_REQUIRED,
            tenant=tenant,
            integration=billing,
            subject=Subject("integration", str(billing.pk), "Billing"),
        ),
        at(2, 45): failing(other_tenant, theirs, "orders"),  # another tenant's: never in ours
        at(3, 15): recovered(tenant, "contacts"),
        at(9, 5): lambda: emit(
            Kind.CREDENTIAL_HEALTHY, tenant=tenant, subject=Subject("integration", str(billing.pk))
        ),
        at(20, 0): failing(tenant, crm, "companies"),
    }
    built = []
    for minute in range(24 * 60 + 1):
        now = at(0) + timedelta(minutes=minute)
        clock.move_to(now)
        if now in script:
            committed(script[now])
        if digests.run_due(now=now)["sent"]:
            built += [
                (d.subscription.name, d.period_end, d.opened, d.resolved, d.still_open)
                for d in Digest.objects.filter(created_at=now).select_related("subscription")
            ]
    assert built == [
        ("hourly", at(3), 2, 0, 2),  # contacts and Billing opened at 02:10 and 02:40
        ("hourly", at(4), 0, 1, 1),  # contacts resolved at 03:15; Billing still open
        *[("hourly", at(h), 0, 0, 1) for h in range(5, 10)],  # Billing stays open…
        ("hourly", at(10), 0, 1, 0),  # …until 09:05
        ("daily", at(17), 2, 2, 0),  # 18:00 in Berlin: the day so far
        ("hourly", at(21), 1, 0, 1),  # companies opened at 20:00
        ("hourly", at(22), 0, 0, 1),
        ("hourly", at(23), 0, 0, 1),
        ("hourly", at(24), 0, 0, 1),
    ]
    # Empty hours (01:00, 02:00, 11:00 … 20:00) sent nothing; the clocks still moved on.
    hourly.refresh_from_db()
    assert hourly.digest_from == at(24) and hourly.next_digest_at == at(25)

    # The 04:00 digest, as Slack receives it.
    assert delivery.work_channel(slack.pk, budget=10)["delivered"] == 12
    assert delivery.work_channel(teams.pk, budget=10)["delivered"] == 1
    four = chat.bodies(SLACK_PATH)[1]
    assert four["text"] == "Castiel digest: 0 opened, 1 resolved, 1 still open"
    sections = [b["text"]["text"] for b in four["blocks"] if b["type"] == "section" and "text" in b]
    assert sections[0] == "From 2026-03-02T03:00:00Z to 2026-03-02T04:00:00Z."
    assert sections[1].startswith("*Tenant A / Billing*: 0 opened, 0 resolved, 1 still open\n• <")
    assert sections[1].endswith("|Credential needs re-authorisation: Billing (open, 1x)>")
    assert sections[2].startswith("*Tenant A / CRM*: 0 opened, 1 resolved, 0 still open\n• <")
    assert "Sync task failing: contacts (resolved, 1x)>" in sections[2]
    assert "orders" not in str(chat.bodies(SLACK_PATH)) + str(chat.bodies(TEAMS_PATH))
    (daily_card,) = chat.bodies(TEAMS_PATH)
    card = daily_card["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Castiel digest: 2 opened, 2 resolved, 0 still open"


def test_each_period_is_built_once_whoever_races_for_it(tenant, committed, clock):
    channel, _ = services.channel_create(
        tenant=tenant, name="mail", type="email", recipients=["ops@example.com"]
    )
    subscription = Subscription(
        tenant=tenant,
        name="every 15",
        channel=channel,
        mode="digest",
        digest_every="minutes",
        digest_minutes=15,
        min_severity=10,
    )
    services.schedule_digest(subscription, now=at(0))
    subscription.save()
    committed(
        lambda: emit(Kind.QUOTA_EXHAUSTED, tenant=tenant, subject=("integration", "i", "CRM"))
    )
    clock.move_to(at(0, 15))
    stale = Subscription.objects.get(pk=subscription.pk)  # what a second worker read
    assert digests.build(subscription, now=at(0, 15)) == "sent"
    assert digests.build(stale, now=at(0, 15)) == "skipped"  # its claim finds the clock moved
    assert Digest.objects.count() == 1 and Delivery.objects.filter(kind="digest").count() == 1


def test_missed_periods_make_one_digest_covering_them(tenant, committed, clock):
    channel, _ = services.channel_create(
        tenant=tenant, name="mail", type="email", recipients=["ops@example.com"]
    )
    subscription = Subscription(
        tenant=tenant,
        name="hourly",
        channel=channel,
        mode="digest",
        digest_every="hourly",
        min_severity=10,
    )
    services.schedule_digest(subscription, now=at(0))
    subscription.save()
    clock.move_to(at(0, 30))
    committed(
        lambda: emit(Kind.QUOTA_EXHAUSTED, tenant=tenant, subject=("integration", "i", "CRM"))
    )
    clock.move_to(at(5, 20))  # no worker ran for five hours
    assert digests.run_due(now=at(5, 20)) == {"sent": 1, "empty": 0, "skipped": 0}
    digest = Digest.objects.get()
    assert (digest.period_start, digest.period_end) == (at(0), at(5))
    subscription.refresh_from_db()
    assert subscription.next_digest_at == at(6)


@pytest.mark.parametrize(
    ("every", "zone", "after", "expected"),
    [
        # Daily 09:00 in Berlin across the spring-forward night (2026-03-29).
        (
            "daily",
            "Europe/Berlin",
            datetime(2026, 3, 28, 8, 30, tzinfo=UTC),
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        (
            "daily",
            "Europe/Berlin",
            datetime(2026, 3, 27, 9, 0, tzinfo=UTC),
            datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
        ),
        # Hourly in a half-hour zone: on the local hour.
        (
            "hourly",
            "Asia/Kolkata",
            datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
            datetime(2026, 3, 2, 10, 30, tzinfo=UTC),
        ),
        (
            "minutes",
            "UTC",
            datetime(2026, 3, 2, 10, 7, tzinfo=UTC),
            datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
        ),
    ],
)
def test_digest_times_follow_the_subscriptions_time_zone(every, zone, after, expected):
    subscription = Subscription(
        digest_every=every, timezone=zone, digest_time=time(9, 0), digest_minutes=15
    )
    assert subscriptions.next_digest_at(subscription, after) == expected
