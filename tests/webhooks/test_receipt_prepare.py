"""The receiver's INSERT prepares each column's value as Django would (webhooks/receipt_insert.py
skips ``get_db_prep_save`` where it would return the value unchanged): PostgreSQL only, the
one database that INSERT runs on."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, models

from tests.webhooks.factories import make_registration
from tests.webhooks.test_receipt_insert import _event
from webhooks.models import WebhookEvent
from webhooks.receipt_insert import RECEIPT_FIELDS, _compiled, _prepared


def _as_sent(value):
    """A prepared parameter as psycopg would send it: its type, and its value unwrapped."""
    return type(value), getattr(value, "obj", value)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"outcome": "accepted", "status": WebhookEvent.Status.PROCESSED, "reason": None},
        {"http_status": 400, "body_size": 0, "receive_ms": None, "duplicate_of_id": None},
        {"id": str(uuid.uuid4()), "received_at": "2026-12-07T10:00:00+00:00"},
        {"http_status": "202", "receive_ms": 3, "correlation_id": 12},  # other types than usual
    ],
)
def test_each_column_is_prepared_as_django_prepares_it(postgres, tenant, values):
    registration = make_registration(tenant)
    event = _event(registration, **values)
    _sql, preparers = _compiled()
    fields = {field.attname: field for field in WebhookEvent._meta.local_concrete_fields}
    for name, prepare in zip(RECEIPT_FIELDS, preparers, strict=True):
        expected = fields[name].get_db_prep_save(event[name], connection)
        assert _as_sent(prepare(event[name], connection)) == _as_sent(expected), name


def test_a_field_subclass_prepares_values_its_own_way(postgres):
    class Sealed(models.TextField):  # an encrypting field, for instance
        def get_db_prep_value(self, value, connection, prepared=False):
            return f"sealed:{value}"

    field = Sealed()
    assert _prepared(field)("secret", connection) == "sealed:secret"
    assert _prepared(models.TextField())("plain", connection) == "plain"
