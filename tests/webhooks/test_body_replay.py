"""GitHub signs only the body: the same body under a new delivery id is a replay, not an event.

``X-GitHub-Delivery`` is not signed, so anyone holding one captured delivery could re-send it
with a fresh id and have it accepted (and processed) again. Schemes that sign the body alone
(``Scheme.dedupe_signed_body``) also deduplicate on the SHA-256 of the signed body within
the retention window, through a key row (``WebhookBodySeen``, unique per registration and
hash) written in the same transaction as the event: race-free, and identical bodies are
accepted again once the window has passed.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support.threads import in_threads
from tests.webhooks.support import github_headers
from webhooks import processing
from webhooks.models import WebhookBodySeen, WebhookEvent

SECRET = "s3cret-for-tests"
BODY = json.dumps({"action": "opened", "issue": {"id": 7, "title": "x"}}).encode()


def deliver(client, registration, body=BODY, delivery=None):
    headers = github_headers(SECRET, body, event="issues", delivery=delivery or str(uuid.uuid4()))
    return client.post(
        f"/webhooks/{registration.pk}/", data=body, content_type="application/json", **headers
    )


def accepted(registration):
    return WebhookEvent.objects.filter(registration=registration, outcome="accepted")


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_same_body_under_a_new_delivery_id_is_a_duplicate(client, make_reg):
    registration = make_reg(scheme="github", secret=SECRET)

    first = deliver(client, registration)
    replay = deliver(client, registration)

    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    assert accepted(registration).count() == 1
    audit = WebhookEvent.objects.get(registration=registration, outcome="duplicate")
    assert (audit.reason, str(audit.duplicate_of_id)) == (
        "duplicate_body",
        first.json()["event_id"],
    )


@pytest.mark.embedded
@pytest.mark.django_db
def test_other_bodies_and_other_registrations_are_not_replays(client, make_reg):
    one = make_reg(scheme="github", secret=SECRET)
    two = make_reg(scheme="github", secret=SECRET)
    other = json.dumps({"action": "closed", "issue": {"id": 7}}).encode()

    assert deliver(client, one).json()["status"] == "accepted"
    assert deliver(client, one, other).json()["status"] == "accepted"
    assert deliver(client, two).json()["status"] == "accepted"


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_redelivery_with_the_same_id_is_still_a_plain_duplicate(client, make_reg):
    registration = make_reg(scheme="github", secret=SECRET)
    deliver(client, registration, delivery="d-1")
    again = deliver(client, registration, delivery="d-1")
    assert again.json()["status"] == "duplicate"
    assert WebhookEvent.objects.get(outcome="duplicate").reason == "duplicate"


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_same_body_is_accepted_again_after_the_window(client, make_reg, settings):
    settings.CASTIEL_WEBHOOK_RETENTION_DAYS = 30
    registration = make_reg(scheme="github", secret=SECRET)
    first = deliver(client, registration).json()["event_id"]
    WebhookBodySeen.objects.update(seen_at=timezone.now() - timedelta(days=31))

    later = deliver(client, registration)

    assert later.json()["status"] == "accepted"
    assert str(WebhookBodySeen.objects.get().event_id) == later.json()["event_id"] != first
    assert deliver(client, registration).json()["status"] == "duplicate"


@pytest.mark.embedded
@pytest.mark.django_db
def test_purging_the_original_event_frees_its_body(client, make_reg):
    registration = make_reg(scheme="github", secret=SECRET)
    deliver(client, registration)
    accepted(registration).update(
        received_at=timezone.now() - timedelta(days=400), status=WebhookEvent.Status.PROCESSED
    )

    assert processing.events_purge(older_than_days=30) == 1

    assert not WebhookBodySeen.objects.exists()
    assert deliver(client, registration).json()["status"] == "accepted"


@pytest.mark.embedded
@pytest.mark.django_db
def test_schemes_that_sign_a_timestamp_or_id_are_not_body_deduplicated(client, make_reg):
    """Stripe re-signs each attempt with a fresh timestamp; its bodies carry a signed id."""
    from webhooks.schemes import SCHEMES

    assert {slug for slug, s in SCHEMES.items() if s.dedupe_signed_body} == {"github"}


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_on_postgresql_the_claim_rides_in_the_events_statement(
    postgres, make_reg, settings
):
    """The receiver's normal case on PostgreSQL: no transaction around the delivery, so the
    event and its body's claim go in one statement — and still answer as above."""
    settings.CASTIEL_WEBHOOK_RETENTION_DAYS = 30
    client = Client()
    registration = make_reg(scheme="github", secret=SECRET)
    assert not connection.in_atomic_block

    with CaptureQueriesContext(connection) as queries:
        first = deliver(client, registration, delivery="d-1").json()
    assert first["status"] == "accepted"
    assert [q for q in queries if q["sql"].startswith("WITH event AS (INSERT")], "one statement"
    assert str(WebhookBodySeen.objects.get().event_id) == first["event_id"]
    assert deliver(client, registration, delivery="d-1").json()["status"] == "duplicate"
    replay = deliver(client, registration).json()
    assert replay == {"status": "duplicate", "event_id": first["event_id"]}
    assert list(
        WebhookEvent.objects.filter(outcome="duplicate")
        .values_list("reason", flat=True)
        .order_by("received_at")
    ) == ["duplicate", "duplicate_body"]

    WebhookBodySeen.objects.update(seen_at=timezone.now() - timedelta(days=31))
    later = deliver(client, registration).json()
    assert later["status"] == "accepted" and later["event_id"] != first["event_id"]
    assert str(WebhookBodySeen.objects.get().event_id) == later["event_id"]
    assert accepted(registration).count() == 2


@pytest.mark.django_db(transaction=True)
def test_racing_replays_store_exactly_one_event(postgres, make_reg):
    """Eight deliveries of one body under eight ids, at once: one event, seven duplicates."""
    registration = make_reg(scheme="github", secret=SECRET)
    answers = in_threads(8, lambda: deliver(Client(), registration).json()["status"])

    assert sorted(answers) == ["accepted"] + ["duplicate"] * 7
    assert accepted(registration).count() == 1
    assert WebhookBodySeen.objects.get().event_id == accepted(registration).get().pk


@pytest.mark.django_db(transaction=True)
def test_an_event_woken_twice_is_claimed_for_processing_once(postgres, make_reg):
    """Two processing workers woken for one stored event at the same moment: one claims it."""
    from tests.webhooks.factories import make_event

    event = make_event(make_reg(scheme="github", secret=SECRET), status="received")
    claims = in_threads(2, lambda: processing._claim(event.pk)[0] is not None)
    assert sorted(claims) == [False, True]
