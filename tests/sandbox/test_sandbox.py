"""The sandbox API as a client sees it: pagination styles, filtering, limits, faults, webhooks."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from sandbox import services
from sandbox.models import SandboxDelivery
from sandbox.signing import verify_standard

pytestmark = pytest.mark.django_db(transaction=True)


def get(sandbox, path, **params):
    return requests.get(f"{sandbox.url}/sandbox/{path}", params=params, timeout=10)


def walk_cursor(sandbox, path, **params):
    ids, cursor = [], None
    while True:
        body = get(sandbox, path, **params, **({"cursor": cursor} if cursor else {})).json()
        ids += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def test_every_pagination_style_returns_every_object_once(sandbox):
    account = sandbox.account()
    sandbox.seed(account, 23)
    expected = sorted(sandbox.expected(account), key=int)
    assert walk_cursor(sandbox, "acme/contacts/", limit=5) == expected
    pages = [get(sandbox, "acme/contacts/", page=p, per_page=10).json() for p in (1, 2, 3)]
    assert [r["id"] for p in pages for r in p["data"]] == expected
    assert [p["next_page"] for p in pages] == [2, 3, None]
    offsets = [get(sandbox, "acme/contacts/", offset=o, limit=10).json() for o in (0, 10, 20)]
    assert [r["id"] for p in offsets for r in p["data"]] == expected
    first = get(sandbox, "acme/contacts/", limit=20)
    assert first.links["next"]["url"].startswith(sandbox.url)
    assert [
        r["id"] for r in requests.get(first.links["next"]["url"], timeout=5).json()["data"]
    ] == (expected[20:])


def test_updated_since_is_inclusive_ordered_and_shows_tombstones(sandbox):
    account = sandbox.account()
    sandbox.seed(account, 5)
    objs = list(account.sandbox_objects.order_by("id"))
    services.object_update(obj=objs[1], data={"email": "new@x.com"})
    services.object_delete(obj=objs[3])
    since = services.iso(objs[1].updated_at)
    body = get(sandbox, "acme/contacts/", updated_since=since).json()
    assert [r["id"] for r in body["data"]] == [str(objs[1].pk), str(objs[3].pk)]
    assert body["data"][1]["deleted"] is True
    assert str(objs[3].pk) not in [r["id"] for r in get(sandbox, "acme/contacts/").json()["data"]]
    assert walk_cursor(sandbox, "acme/contacts/", updated_since=since, limit=1) == [
        str(objs[1].pk),
        str(objs[3].pk),
    ]


def test_rate_limit_headers_and_429_with_retry_after(sandbox):
    sandbox.account(rate_limit=2, rate_window_seconds=30)
    first, second, third = (get(sandbox, "acme/contacts/") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert [r.headers["X-RateLimit-Remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    assert 1 <= int(third.headers["Retry-After"]) <= 30
    assert third.headers["RateLimit-Reset"] == third.headers["Retry-After"]


def test_faults_can_be_switched_at_run_time(sandbox):
    sandbox.account()
    control = f"{sandbox.url}/sandbox/acme/_control/"
    requests.put(control, json={"faults": {"script": ["503", "malformed"]}}, timeout=5)
    assert get(sandbox, "acme/contacts/").status_code == 503
    malformed = get(sandbox, "acme/contacts/")
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert get(sandbox, "acme/contacts/").status_code == 200
    assert requests.get(control, timeout=5).json()["requests"] == 3


def test_api_key_is_required_when_set(sandbox):
    sandbox.account(api_key="sekret")
    assert get(sandbox, "acme/contacts/").status_code == 401
    ok = requests.get(
        f"{sandbox.url}/sandbox/acme/contacts/",
        headers={"Authorization": "Bearer sekret"},
        timeout=5,
    )
    assert ok.status_code == 200


SECRET = "whsec_" + base64.b64encode(b"sandbox-test-secret").decode()


def test_changes_send_standard_webhooks_signed_with_the_secret(
    sandbox, http_server, run_tasks_inline
):
    received = []

    @http_server.route("POST", "/hooks")
    def hook(request):
        received.append(request)
        return 204, {}, b""

    account = sandbox.account(webhook_url=f"{http_server.url}/hooks", webhook_secret=SECRET)
    obj = services.object_create(account=account, collection="contacts", data={"email": "a@x"})
    services.object_update(obj=obj, data={"email": "b@x"})
    services.object_delete(obj=obj)

    assert [json.loads(r.body)["type"] for r in received] == [
        "contacts.created",
        "contacts.updated",
        "contacts.deleted",
    ]
    for request in received:
        assert verify_standard(SECRET, request.headers, request.body)
        assert not verify_standard(
            "whsec_" + base64.b64encode(b"wrong").decode(), request.headers, request.body
        )
    assert json.loads(received[1].body)["data"]["email"] == "b@x"
    assert SandboxDelivery.objects.filter(delivered_at__isnull=False).count() == 3


def test_github_style_signatures(sandbox, http_server, run_tasks_inline):
    import hashlib
    import hmac

    received = []

    @http_server.route("POST", "/gh")
    def hook(request):
        received.append(request)
        return 200, {}, b"ok"

    account = sandbox.account(
        webhook_url=f"{http_server.url}/gh", webhook_secret="gh-secret", webhook_scheme="github"
    )
    services.object_create(account=account, collection="deals", data={"amount": 5})
    [request] = received
    expected = "sha256=" + hmac.new(b"gh-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature-256"] == expected
    assert request.headers["x-github-event"] == "deals.created"
    assert request.headers["x-github-delivery"].startswith("evt_")
