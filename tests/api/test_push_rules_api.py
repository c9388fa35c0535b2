"""The push-rules API: CRUD with field errors for everything a rule can get wrong."""

from __future__ import annotations

import pytest

from syncing.models import PushRule
from tests.syncing.helpers import make_integration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def pair(tenant):
    return (
        make_integration(tenant, "http://127.0.0.1:9/", name="CRM"),
        make_integration(tenant, "http://127.0.0.1:9/", name="Helpdesk"),
    )


def body(source, target, **overrides):
    return {
        "name": "CRM → helpdesk",
        "source_integration": str(source.pk),
        "source_entity_type": "contacts",
        "event_types": ["contacts.*"],
        "target_integration": str(target.pk),
        "target_entity_type": "users",
        "field_mapping": {"email": {"path": "email", "transform": "email"}, "name": "name"},
        "match_field": "email",
        **overrides,
    }


def test_create_read_update_delete(api, tenant, pair):
    source, target = pair
    created = api.post("/api/v1/push-rules/", body(source, target), format="json")
    assert created.status_code == 201, created.json()
    rule = created.json()
    assert rule["enabled"] is True and rule["create_missing"] is True
    assert rule["last_fired_at"] is None
    assert PushRule.objects.get(pk=rule["id"]).tenant == tenant

    listed = api.get("/api/v1/push-rules/", {"source_integration": str(source.pk)}).json()
    assert [r["id"] for r in listed["results"]] == [rule["id"]]
    assert (
        api.get("/api/v1/push-rules/", {"target_integration": str(source.pk)}).json()["count"] == 0
    )

    patched = api.patch(f"/api/v1/push-rules/{rule['id']}/", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert api.delete(f"/api/v1/push-rules/{rule['id']}/").status_code == 204
    assert not PushRule.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"match_field": "phone"}, "match_field"),
        ({"match_field": "data__email"}, "match_field"),
        ({"field_mapping": {"email": {"path": "email", "transform": "nope"}}}, "field_mapping"),
        ({"event_types": [""]}, "event_types"),
        ({"target_entity_type": "contacts"}, "target_entity_type"),  # its own source
    ],
)
def test_invalid_rules_are_400_with_the_field(api, pair, overrides, field):
    source, target = pair
    if field == "target_entity_type":
        overrides = {**overrides, "target_integration": str(source.pk)}
    response = api.post("/api/v1/push-rules/", body(source, target, **overrides), format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert field in response.json()["details"]


def test_duplicate_name_is_400_not_500(api, pair):
    source, target = pair
    assert api.post("/api/v1/push-rules/", body(source, target), format="json").status_code == 201
    again = api.post("/api/v1/push-rules/", body(source, target), format="json")
    assert again.status_code == 400 and "name" in again.json()["details"]


def test_another_tenants_integrations_cannot_be_used(api, pair, other_tenant):
    source, _target = pair
    theirs = make_integration(other_tenant, "http://127.0.0.1:9/", name="Theirs")
    for field in ("source_integration", "target_integration"):
        payload = body(source, _target, **{field: str(theirs.pk)})
        response = api.post("/api/v1/push-rules/", payload, format="json")
        assert response.status_code == 400 and field in response.json()["details"]
