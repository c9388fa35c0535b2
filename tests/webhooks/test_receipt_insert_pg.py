"""Webhook bodies are stored with lz4 TOAST compression on PostgreSQL (migration 0002)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.webhooks.factories import make_registration
from tests.webhooks.test_receipt_insert import _event
from webhooks.receipt_insert import insert_event

# Not marked embedded: PostgreSQL only (the embedded run is SQLite).
pytestmark = pytest.mark.django_db


def test_bodies_are_compressed_with_lz4_where_the_server_has_it(tenant):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL server is built without lz4")
    event = _event(make_registration(tenant), body=b'{"text": "compressible"}' * 2000)
    insert_event(event)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(body) FROM webhooks_webhookevent WHERE id = %s",
            [event.pk],
        )
        assert cursor.fetchone()[0] == "lz4"
