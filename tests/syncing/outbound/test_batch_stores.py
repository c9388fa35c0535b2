"""The batch endpoint on each record store: set-based on the ORM store; on Cosmos DB (which
cannot join the transaction) per item through the single writes, and atomic refused."""

from __future__ import annotations

import pytest

from syncing.models import OutboundChange

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]
URL = "/api/v1/records/batch/"


def test_a_per_item_batch_is_written_to_the_store(api, stored_records, record_store, pushes):
    integration, records = stored_records
    a, b, c, theirs = records["a"], records["b"], records["c"], records["theirs"]
    items = [
        {"op": "update", "id": str(a.id), "data": {"name": "Ada L."}, "expected_version": 1},
        {"op": "delete", "id": str(b.id)},
        {"op": "update", "id": str(c.id), "data": {"name": "back?"}},
        {"op": "update", "id": str(theirs.id), "data": {"name": "mine"}},
        {
            "op": "create",
            "integration": str(integration.pk),
            "entity_type": "contacts",
            "data": {"name": "Di"},
        },
    ]
    response = api.post(URL, {"items": items}, format="json")
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [(r["status"], r["error"] and r["error"]["code"]) for r in results] == [
        (200, None),
        (200, None),
        (409, "record_deleted"),
        (404, "not_found"),
        (201, None),
    ]
    assert record_store.get(a.tenant_id, a.id).data["name"] == "Ada L."
    assert record_store.get(b.tenant_id, b.id).deleted_at is not None
    assert record_store.get(theirs.tenant_id, theirs.id).data["name"] == "Zed"
    assert record_store.get(a.tenant_id, results[4]["id"]).data == {"name": "Di"}
    assert sorted(OutboundChange.objects.values_list("operation", flat=True)) == [
        "create",
        "delete",
        "update",
    ]


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_an_atomic_batch_is_refused_on_cosmos_db(api, stored_records, record_store):
    _integration, records = stored_records
    a = records["a"]
    item = {"op": "update", "id": str(a.id), "data": {"name": "Ada L."}}
    response = api.post(URL, {"atomic": True, "items": [item]}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "atomic_unsupported"
    assert record_store.get(a.tenant_id, a.id).data["name"] == "Ada"
    assert not OutboundChange.objects.exists()
