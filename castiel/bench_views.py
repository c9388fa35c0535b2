"""Baseline views for the benchmark harness (only routed when CASTIEL_BENCH_VIEWS=1)."""

import psycopg
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

# Created by the bench (bench/webhooks.py), not by a migration: it exists only there.
INSERT_TABLE = "bench_inserted"
CREATE_INSERT_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {INSERT_TABLE} (id bigserial PRIMARY KEY, delivery text, "
    "body bytea NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
)
# The body's TOAST compression, as the receiver's table has it where the server offers lz4
# (webhooks/migrations/0002_event_body_lz4.py): the baseline pays no more than the receiver.
LZ4_IF_AVAILABLE = (
    "DO $$ BEGIN IF (SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
    " WHERE name = 'default_toast_compression')"
    " THEN ALTER TABLE bench_inserted ALTER COLUMN body SET COMPRESSION lz4; END IF; END $$"
)


@csrf_exempt  # the webhooks bench POSTs the same signed deliveries here as to the receiver
def bare_view(request):
    return JsonResponse({"ok": True})


@csrf_exempt
def bare_insert_view(request):
    """The least a receiver that never acknowledges what it has not stored must do: one
    durable (autocommitted) INSERT of the body, then 200 — done as cheaply as the receiver's
    own INSERT (webhooks/receipt_insert.py): one round trip (no health-check ``SELECT 1``
    first), the body bound server-side as binary rather than escaped into the SQL text, and
    the same TOAST compression (``LZ4_IF_AVAILABLE``)."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"INSERT INTO {INSERT_TABLE} (delivery, body) VALUES (%s, %s)",  # noqa: S608
            [request.headers.get("X-GitHub-Delivery", ""), request.body],
        )
    return JsonResponse({"ok": True})
