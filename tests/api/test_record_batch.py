"""``POST /api/v1/records/batch/``: per-item results, atomic vs per-item, 400 naming the item
and field for bad input (nothing written), tenant isolation, the schema matching the checks."""

from __future__ import annotations

import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator

from syncing.models import OutboundChange, Record, RecordChange
from syncing.outbound.batch_changes import MAX_ITEMS
from tests.factories import IntegrationFactory
from tests.syncing.factories import make_record

URL = "/api/v1/records/batch/"
pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def post(api, body):
    return api.post(URL, body, format="json")


def test_a_mixed_batch_answers_each_item(api, tenant, pushes):
    integration = IntegrationFactory(tenant=tenant)
    a, b = make_record(tenant), make_record(tenant)  # (each in an integration of its own)
    response = post(
        api,
        {
            "items": [
                {
                    "op": "create",
                    "integration": str(integration.pk),
                    "entity_type": "contacts",
                    "data": {"name": "Ada"},
                },
                {"op": "update", "id": str(a.pk), "data": {"name": "y"}, "expected_version": 1},
                {"op": "update", "id": str(b.pk), "data": {"name": "z"}, "expected_version": 5},
                {"op": "delete", "id": str(uuid.uuid4())},
            ]
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["atomic"], body["succeeded"], body["failed"]) == (False, 2, 2)
    results = body["results"]
    assert [(r["index"], r["op"], r["ok"], r["status"]) for r in results] == [
        (0, "create", True, 201),
        (1, "update", True, 200),
        (2, "update", False, 409),
        (3, "delete", False, 404),
    ]
    assert [r["error"] and r["error"]["code"] for r in results] == [
        None,
        None,
        "version_mismatch",
        "not_found",
    ]
    created = Record.objects.get(pk=results[0]["id"])
    assert created.data == {"name": "Ada"} and results[0]["external_id"] == created.external_id
    assert results[1]["version"] == 2 and Record.objects.get(pk=a.pk).data["name"] == "y"
    assert Record.objects.get(pk=b.pk).version == 1 and results[2]["version"] == 1
    changes = {str(c.pk): c for c in OutboundChange.objects.all()}
    assert changes[results[0]["outbound_change"]].operation == "create"
    assert changes[results[1]["outbound_change"]].fields == ["name"]
    assert {c.origin for c in changes.values()} == {"api"}
    assert results[2]["outbound_change"] is None and results[3]["id"] is None


def test_an_atomic_batch_that_fails_is_409_and_writes_nothing(api, tenant, pushes):
    a, b = make_record(tenant), make_record(tenant)
    items = [
        {"op": "update", "id": str(a.pk), "data": {"name": "y"}},
        {"op": "delete", "id": str(b.pk), "expected_version": 3},
    ]
    response = post(api, {"atomic": True, "items": items})
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "batch_not_applied"
    assert error["details"]["items"] == [
        {
            "index": 1,
            "status": 409,
            "code": "version_mismatch",
            "message": "the record is at version 1, not 3",
        }
    ]
    assert Record.objects.get(pk=a.pk).data["name"] == "x"
    assert not OutboundChange.objects.exists() and not RecordChange.objects.exists()

    items[1]["expected_version"] = 1
    response = post(api, {"atomic": True, "items": items})
    assert response.status_code == 200 and response.json()["failed"] == 0
    assert Record.objects.get(pk=b.pk).deleted_at is not None


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"op": "update", "id": "not-a-uuid", "data": {}}, "id"),
        ({"op": "update", "data": {"a": 1}}, "id"),
        ({"op": "update", "id": "{id}", "data": [1]}, "data"),
        ({"op": "update", "id": "{id}", "data": {}, "expected_version": 0}, "expected_version"),
        ({"op": "update", "id": "{id}", "data": {}, "expected_version": "2"}, "expected_version"),
        ({"op": "update", "id": "{id}", "data": {}, "replace": "yes"}, "replace"),
        ({"op": "delete", "id": "{id}", "data": {}}, "data"),
        ({"op": "upsert", "id": "{id}"}, "op"),
        (
            {"op": "create", "integration": "{foreign}", "entity_type": "c", "data": {}},
            "integration",
        ),
        ({"op": "create", "integration": "{mine}", "entity_type": "", "data": {}}, "entity_type"),
        (
            {"op": "create", "integration": "{mine}", "entity_type": "x" * 101, "data": {}},
            "entity_type",
        ),
        ({"op": "create", "integration": "{mine}", "entity_type": "c"}, "data"),
    ],
)
def test_bad_input_is_400_naming_the_item_and_field_and_writes_nothing(
    api, tenant, other_tenant, item, field
):
    record = make_record(tenant)
    mine, foreign = IntegrationFactory(tenant=tenant), IntegrationFactory(tenant=other_tenant)
    names = {"{id}": str(record.pk), "{mine}": str(mine.pk), "{foreign}": str(foreign.pk)}
    item = {
        key: names.get(value, value) if isinstance(value, str) else value
        for key, value in item.items()
    }
    good = {"op": "update", "id": str(record.pk), "data": {"name": "changed"}}
    response = post(api, {"items": [good, item]})
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == "invalid"
    assert {(e["index"], e["field"]) for e in error["details"]["items"]} == {(1, field)}
    assert Record.objects.get(pk=record.pk).data["name"] == "x"  # the good item waited too
    assert not OutboundChange.objects.exists()


def test_the_batch_itself_is_checked(api, tenant):
    record = make_record(tenant)
    one = {"op": "delete", "id": str(record.pk)}
    too_many = post(api, {"items": [one] * (MAX_ITEMS + 1)})
    assert too_many.status_code == 400 and "items" in too_many.json()["details"]
    assert post(api, {"items": []}).status_code == 400
    assert "atomic" in post(api, {"items": [one], "atomic": "yes"}).json()["details"]
    assert "extra" in post(api, {"items": [one], "extra": 1}).json()["details"]
    twice = post(api, {"items": [one, {**one, "expected_version": 1}]})
    assert twice.status_code == 400
    assert twice.json()["details"]["items"] == [
        {"index": 1, "field": "id", "message": "Already changed by item 0: one item per record."}
    ]
    assert Record.objects.get(pk=record.pk).deleted_at is None


def test_another_tenants_records_are_unknown_and_untouched(api, tenant, other_tenant, pushes):
    theirs = make_record(other_tenant)
    response = post(
        api,
        {"items": [{"op": "update", "id": str(theirs.pk), "data": {"name": "mine now"}}]},
    )
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert (result["status"], result["error"]["code"], result["id"]) == (404, "not_found", None)
    assert Record.objects.get(pk=theirs.pk).data["name"] == "x"
    assert not OutboundChange.objects.exists()


def test_a_full_batch_of_1000_goes_through(api, tenant, pushes):
    integration = IntegrationFactory(tenant=tenant)
    items = [
        {"op": "create", "integration": str(integration.pk), "entity_type": "c", "data": {"i": i}}
        for i in range(MAX_ITEMS)
    ]
    response = post(api, {"items": items})
    assert response.status_code == 200 and response.json()["succeeded"] == MAX_ITEMS
    assert Record.objects.filter(tenant=tenant).count() == MAX_ITEMS
    assert OutboundChange.objects.filter(operation="create").count() == MAX_ITEMS
    assert RecordChange.objects.filter(action="created").count() == MAX_ITEMS


def test_the_schema_documents_the_endpoint():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][URL]["post"]
    assert {"200", "400", "401", "404", "409", "413"} <= set(operation["responses"])
    request = schema["components"]["schemas"]["RecordBatchRequest"]
    assert request["properties"]["items"]["maxItems"] == MAX_ITEMS
    item = schema["components"]["schemas"]["RecordBatchItemRequest"]
    assert set(item["properties"]) == {
        "op",
        "id",
        "integration",
        "entity_type",
        "data",
        "replace",
        "expected_version",
    }
