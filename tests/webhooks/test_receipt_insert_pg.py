"""Webhook bodies are stored with lz4 TOAST compression on PostgreSQL (migration 0002)."""

from __future__ import annotations

import pytest
from django.db import close_old_connections, connection

from tests.support.services import require_postgres
from tests.webhooks.factories import make_registration
from tests.webhooks.test_receipt_insert import _event
from webhooks.receipt_insert import insert_event

# Not marked embedded: PostgreSQL only (the embedded run is SQLite).
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres():
    require_postgres()  # skips with the reason on a laptop's SQLite; under CI=true, fails


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
            [event["id"]],
        )
        assert cursor.fetchone()[0] == "lz4"


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_costs_one_retry_not_the_delivery(client, tenant):
    """The receiver skips Django's per-request health check (a round trip as long as its one
    INSERT); a connection PostgreSQL dropped meanwhile is found by the INSERT and replaced."""
    import json
    import uuid

    import psycopg

    from tests.support.processes import database_url
    from tests.webhooks.support import github_headers
    from webhooks.models import WebhookEvent

    secret = "s3cret-for-tests"
    registration = make_registration(tenant, scheme="github", secret=secret)

    def deliver(n: int):
        body = json.dumps({"action": "opened", "issue": {"id": n}}).encode()
        headers = github_headers(secret, body, event="issues", delivery=str(uuid.uuid4()))
        return client.post(
            f"/webhooks/{registration.pk}/", data=body, content_type="application/json", **headers
        )

    assert deliver(1).json()["status"] == "accepted"
    backend = connection.connection.info.backend_pid
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    # What Django does as each request starts (the test client leaves it out): the request's
    # first query is due a health check.
    close_old_connections()
    answer = deliver(2)
    assert (answer.status_code, answer.json()["status"]) == (200, "accepted")
    assert WebhookEvent.objects.filter(registration=registration).count() == 2
    assert connection.connection.info.backend_pid != backend  # a fresh connection
