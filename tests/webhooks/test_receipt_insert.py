"""The receiver's insert writes exactly the row ``Model.save()`` writes, on every database."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import NOT_PROVIDED
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.webhooks.factories import make_registration
from webhooks.models import WebhookEvent
from webhooks.receipt_insert import insert_event

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

# Every byte value, NULs and invalid UTF-8 included: the body must come back bit for bit.
BODY = bytes(range(256)) * 64 + json.dumps({"title": "résumé ✓"}).encode()


def _event(registration, **fields) -> dict:
    """A receipt's columns (``RECEIPT_FIELDS``), as the receiver builds them."""
    values = {
        "id": uuid.uuid4(),
        "tenant_id": registration.tenant_id,
        "registration_id": registration.id,
        "outcome": WebhookEvent.Outcome.ACCEPTED,
        "reason": "ok",
        "http_status": 202,
        "status": WebhookEvent.Status.RECEIVED,
        "dedupe_key": f"delivery-{uuid.uuid4()}",
        "matched_secret": "previous",
        "correlation_id": "corr-1",
        "receive_ms": 1.25,
        "method": "POST",
        "query_string": "a=1&b=%00",
        "headers": {"Content-Type": "application/json", "X-Nested": ["é", {"n": None}]},
        "body": BODY,
        "body_size": len(BODY),
        "content_type": "application/json",
        "remote_addr": "2001:db8::1",
        "duplicate_of_id": None,
        "received_at": timezone.now() - timedelta(seconds=3),
    }
    values.update(fields)
    return values


def _columns(pk) -> dict:
    row = WebhookEvent.objects.filter(pk=pk).values().get()
    row["body"] = bytes(row["body"])
    return row


def test_insert_writes_the_row_save_writes(tenant):
    registration = make_registration(tenant)
    fast, saved = _event(registration), _event(registration)
    insert_event(fast)
    WebhookEvent(**saved).save(force_insert=True)

    fast_row, saved_row = _columns(fast["id"]), _columns(saved["id"])
    for row in (fast_row, saved_row):
        del row["id"], row["dedupe_key"], row["received_at"]
    assert fast_row == saved_row
    assert fast_row["body"] == BODY
    assert fast_row["headers"]["X-Nested"] == ["é", {"n": None}]
    stored = WebhookEvent.objects.get(pk=fast["id"])
    assert stored.received_at == fast["received_at"]
    # The columns a receipt leaves out hold the model's defaults.
    assert stored.attempts == 0 and stored.replay_count == 0 and stored.actions == []
    assert stored.provider == stored.event_type == stored.last_error == ""
    assert stored.processed_at is None and stored.next_attempt_at is None


def test_a_receipt_is_exactly_the_receipt_columns(tenant):
    registration = make_registration(tenant)
    with pytest.raises(ValueError, match="exactly the columns"):
        insert_event({**_event(registration), "provider": "github"})
    values = _event(registration)
    del values["receive_ms"]
    with pytest.raises(ValueError, match="exactly the columns"):
        insert_event(values)
    assert not WebhookEvent.objects.exists()


def test_the_database_defaults_are_the_model_defaults(tenant):
    """What a receipt leaves to the database is what the model would have written."""
    from webhooks.receipt_insert import RECEIPT_FIELDS

    left_out = [
        field
        for field in WebhookEvent._meta.local_concrete_fields
        if field.attname not in RECEIPT_FIELDS
    ]
    assert left_out  # the receipt does leave columns to the database
    for field in left_out:
        if field.null:
            assert not field.has_default() and field.db_default is NOT_PROVIDED, field.name
        else:
            assert field.db_default == field.get_default(), field.name


def test_a_dedupe_conflict_is_djangos_integrity_error(tenant):
    registration = make_registration(tenant)
    insert_event(_event(registration, dedupe_key="same"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_event(_event(registration, dedupe_key="same"))
    assert WebhookEvent.objects.filter(dedupe_key="same").count() == 1


def test_the_insert_is_visible_to_query_logging(tenant):
    event = _event(make_registration(tenant))
    with CaptureQueriesContext(connection) as queries:
        insert_event(event)
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
