"""The sandbox's batch endpoint: each item answered on its own, in order, and the same answers
and stored state whether the items are applied together (a few statements) or one by one."""

from __future__ import annotations

import json

import pytest

from sandbox import batch, services
from sandbox.models import SandboxDelivery, SandboxIdempotencyKey, SandboxObject

pytestmark = pytest.mark.django_db

FAULTS = {"item_error_rate": 0.3, "item_retry_rate": 0.2, "seed": 3}


def post(client, slug: str, operation: str, inputs: list):
    response = client.post(
        f"/sandbox/{slug}/contacts/batch/{operation}/",
        data=json.dumps({"inputs": inputs}),
        content_type="application/json",
    )
    return response.status_code, response.json()["results"]


def creates(n: int) -> list:
    inputs = [{"key": f"k{i}", "data": {"email": f"c{i}@example.com", "n": i}} for i in range(n)]
    inputs[3]["data"]["email"] = "not-an-email"  # 422 validation failed
    inputs[5] = "not an object"  # 400, no key
    inputs[7]["data"] = ["not", "an", "object"]  # 400 body must be a JSON object
    del inputs[9]["key"]  # no key: applied, nothing stored to replay
    return inputs


def comparable(results: list) -> list:
    """Answers without what differs between two accounts (ids, times)."""
    kept = []
    for result in results:
        result = {k: v for k, v in result.items() if k != "id"}
        if "record" in result:
            record = result["record"]
            result["record"] = {k: v for k, v in record.items() if k != "id" and "_at" not in k}
        kept.append(result)
    return kept


def state(account) -> tuple:
    keys = SandboxIdempotencyKey.objects.filter(account=account).order_by("key")
    return (
        sorted(
            json.dumps(o.data, sort_keys=True)
            for o in SandboxObject.objects.filter(account=account)
        ),
        [(k.key, k.status, k.method) for k in keys],
    )


@pytest.mark.parametrize("operation", ["create", "update", "archive"])
def test_items_applied_together_answer_as_one_at_a_time(client, monkeypatch, operation):
    together = services.account_create(slug="together", faults=FAULTS)
    alone = services.account_create(slug="alone", faults=FAULTS)
    answers = {}
    for account in (together, alone):
        if account is alone:
            monkeypatch.setattr(batch, "_together", lambda *args: None)
        inputs = creates(20)
        if operation != "create":
            objects = services.objects_seed(
                account=account, collection="contacts", rows=[{"n": i} for i in range(20)]
            )
            ids = list(
                SandboxObject.objects.filter(account=account)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            assert objects == len(ids)
            for entry, pk in zip(inputs, ids, strict=True):
                if isinstance(entry, dict):
                    entry["id"] = pk
            inputs[11]["id"] = 10**9  # 404 not found
        # The first call applies; the second replays every keyed item's stored answer.
        answers[account.slug] = [post(client, account.slug, operation, inputs) for _ in "12"]
        hashes = dict(
            SandboxIdempotencyKey.objects.filter(account=account).values_list("key", "body_hash")
        )
        # A key is kept with the first answer that was not a retryable 503.
        assert hashes == {
            entry["key"]: batch._body_hash(entry)
            for _, results in answers[account.slug]
            for entry, result in zip(inputs, results, strict=True)
            if isinstance(entry, dict) and entry.get("key") and result["status"] != 503
        }

    assert [(s, comparable(r)) for s, r in answers["together"]] == [
        (s, comparable(r)) for s, r in answers["alone"]
    ]
    assert state(together) == state(alone)
    (status, first), (_, second) = answers["together"]
    assert status == 207
    statuses = {r["status"] for r in first}
    assert {400, 422, 503} <= statuses and statuses & {200, 201}
    replayed = [r for r in second if r.get("replayed")]
    stored = [r for r in first if r.get("key") and r["status"] != 503]
    assert [r["key"] for r in replayed] == [r["key"] for r in stored]


def test_two_items_with_one_key_go_one_by_one_and_the_second_replays(client):
    services.account_create(slug="acme")
    item = {"key": "same", "data": {"email": "a@example.com"}}
    status, results = post(client, "acme", "create", [item, dict(item)])
    assert status == 200
    assert results[0]["status"] == results[1]["status"] == 201
    assert results[1]["replayed"] is True and results[1]["id"] == results[0]["id"]
    assert SandboxObject.objects.count() == 1


def test_objects_created_together_send_their_webhooks(client, django_capture_on_commit_callbacks):
    services.account_create(slug="acme", webhook_url="https://hooks.invalid/x")
    with django_capture_on_commit_callbacks():
        status, results = post(client, "acme", "create", creates(12))
    assert status == 207
    created = [r["id"] for r in results if r["status"] == 201]
    events = SandboxDelivery.objects.filter(event_type="contacts.created")
    assert sorted(json.loads(d.body)["data"]["id"] for d in events) == sorted(map(str, created))
