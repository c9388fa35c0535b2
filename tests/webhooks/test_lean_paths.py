"""The receiver runs the short middleware chain (castiel/lean_paths.py); every other URL the
full one."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import override_settings

from tests.webhooks.support import github_headers
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

SECRET = "s3cret-for-tests"
BODY = json.dumps({"action": "opened", "issue": {"id": 7}}).encode()
SEEN: list[str] = []


class Recording:
    """Notes each path it sees (installed in one chain or the other by a test)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        SEEN.append(request.path)
        return self.get_response(request)


RECORDING = f"{__name__}.Recording"


@pytest.fixture
def github(make_reg):
    SEEN.clear()
    return make_reg(scheme="github", secret=SECRET)


def deliver(client, registration, body=BODY):
    headers = github_headers(SECRET, body, event="issues", delivery=str(uuid.uuid4()))
    return client.post(
        f"/webhooks/{registration.pk}/", data=body, content_type="application/json", **headers
    )


def test_a_delivery_skips_the_browser_middleware_but_keeps_what_every_answer_needs(client, github):
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, RECORDING]):
        response = deliver(client, github)
        page = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.filter(pk=response.json()["event_id"]).exists()
    assert SEEN == ["/healthz"]  # the full stack served the page, not the delivery
    # The lean chain's own middleware ran: correlation id, security and length headers.
    assert response["X-Correlation-ID"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert int(response["Content-Length"]) == len(response.content)
    # The browser-only ones did not (the page got them).
    assert "X-Frame-Options" not in response and page["X-Frame-Options"] == "DENY"
    assert not response.cookies


def test_the_lean_chain_is_a_setting(client, github):
    lean = [*settings.CASTIEL_LEAN_MIDDLEWARE, RECORDING]
    with override_settings(CASTIEL_LEAN_MIDDLEWARE=lean):
        deliver(client, github)
        client.get("/healthz")
    assert SEEN == [f"/webhooks/{github.pk}/"]


def test_without_prefixes_every_request_takes_the_full_stack(client, github):
    middleware = [*settings.MIDDLEWARE, RECORDING]
    with override_settings(MIDDLEWARE=middleware, CASTIEL_LEAN_PATH_PREFIXES=[]):
        response = deliver(client, github)
    assert response.status_code == 200
    assert SEEN == [f"/webhooks/{github.pk}/"]
    assert response["X-Frame-Options"] == "DENY"


def test_an_error_in_the_lean_chain_is_answered_like_any_other(client, github, monkeypatch):
    from webhooks import views

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(views.lookup, "get_registration", broken)
    client.raise_request_exception = False
    response = deliver(client, github)
    assert response.status_code == 500
    assert response["X-Correlation-ID"]  # the chain's middleware still saw the answer


@pytest.mark.django_db(transaction=True)
def test_the_lean_chain_serves_asgi_too(async_client, github):
    """castiel/asgi.py: Django adapts the synchronous lean middleware like any other."""
    meta = github_headers(SECRET, BODY, event="issues", delivery=str(uuid.uuid4()))
    headers = {key.removeprefix("HTTP_").replace("_", "-"): value for key, value in meta.items()}

    async def post():
        try:
            return await async_client.post(
                f"/webhooks/{github.pk}/",
                data=BODY,
                content_type="application/json",
                headers=headers,
            )
        finally:  # the view's thread keeps its connection open otherwise
            await sync_to_async(connections.close_all)()

    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, RECORDING]):
        # An event loop of its own, in a thread of its own: earlier tests of the suite may
        # leave one running in this thread.
        with ThreadPoolExecutor(1) as pool:
            response = pool.submit(asyncio.run, post()).result()
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert response["X-Correlation-ID"] and "X-Frame-Options" not in response
    assert SEEN == []
