"""Query-string values whose names look secret never reach request logs or stored webhook
events (one helper: castiel/observability/redaction.py); dead letters keep no query string."""

from __future__ import annotations

import logging

import pytest

from castiel.observability.logging import formatter_factory
from castiel.observability.redaction import redact_query, redact_url

SECRET_NAMES = [
    "key",
    "token",
    "secret",
    "signature",
    "sig",
    "password",
    "api_key",
    "code",
    "access_token",
    "hapikey",
    "client_secret",
    "X-Amz-Signature",
    "subscription-key",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_looking_values_are_redacted_and_the_rest_kept(name):
    redacted = redact_query(f"page=2&{name}=s3cr3t-value&state=ok&empty=")
    assert "s3cr3t-value" not in redacted
    assert redacted == f"page=2&{name}=%5Bredacted%5D&state=ok&empty="
    url = redact_url(f"https://api.example.com/v1/items?{name}=s3cr3t-value&page=2#frag")
    assert url == f"https://api.example.com/v1/items?{name}=%5Bredacted%5D&page=2#frag"


def test_encoded_and_repeated_names_are_redacted():
    assert "abc" not in redact_query("Api%5FKey=abc&token=abc&TOKEN=abc")
    assert redact_query("") == ""
    assert redact_query("justaflag") == "justaflag"


def _render(logger_name: str, msg: str, *args) -> str:
    record = logging.getLogger(logger_name).makeRecord(
        logger_name, logging.INFO, __file__, 1, msg, args, None
    )
    return formatter_factory("json").format(record)


def test_request_lines_in_logs_have_their_secrets_redacted():
    """runserver's request log (django.server) prints the whole request line."""
    line = _render(
        "django.server",
        '"%s" %s %s',
        "GET /oauth/callback/?code=oauth-code-123&state=abc HTTP/1.1",
        "302",
        "0",
    )
    assert "oauth-code-123" not in line
    assert "state=abc" in line
    assert "/oauth/callback/?code=%5Bredacted%5D" in line


def test_structured_fields_holding_urls_are_redacted():
    from castiel.observability.logging import get_logger

    handler = logging.StreamHandler()
    handler.setFormatter(formatter_factory("json"))
    stream = []
    handler.emit = lambda record: stream.append(handler.format(record))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        get_logger("tests.redaction").warning(
            "fetch.failed", url="https://x.example/a?api_key=k-999&page=3"
        )
    finally:
        logger.removeHandler(handler)
    assert stream and "k-999" not in stream[0] and "page=3" in stream[0]


@pytest.mark.django_db
@pytest.mark.embedded
def test_stored_webhook_events_keep_no_secret_query_values(client, tenant):
    from tests.webhooks.factories import make_registration
    from webhooks.models import WebhookEvent

    registration = make_registration(tenant)
    response = client.post(
        f"/webhooks/{registration.id}/?token=wh-token-777&source=crm",
        data=b"{}",
        content_type="application/json",
    )
    assert response.status_code == 401  # unsigned: rejected, and audited
    event = WebhookEvent.objects.get(registration=registration)
    assert "wh-token-777" not in event.query_string
    assert event.query_string == "token=%5Bredacted%5D&source=crm"
