"""The records API serves the configured record store: the ORM, or Cosmos DB (cosmosdb-server)."""

from __future__ import annotations

import pytest

from syncing.models import OutboundChange

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def all_pages(api, url) -> list[dict]:
    results = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.json()
        results += response.json()["results"]
        url = response.json()["next"]
    return results


def test_list_filter_page_and_get_come_from_the_store(api, stored_records):
    integration, records = stored_records
    live = api.get(f"/api/v1/records/?deleted=false&integration={integration.pk}").json()
    assert sorted(r["external_id"] for r in live["results"]) == ["a", "b"]
    paged = all_pages(api, "/api/v1/records/?page_size=1&entity_type=contacts")
    assert sorted(r["external_id"] for r in paged) == ["a", "b", "c"]  # not the other tenant's
    one = api.get(f"/api/v1/records/{records['a'].id}/").json()
    assert (one["data"], one["integration"]) == (records["a"].data, str(integration.pk))
    assert api.get(f"/api/v1/records/{records['theirs'].id}/").status_code == 404
    assert api.get("/api/v1/records/not-a-uuid/").status_code == 404


def test_a_patch_is_written_to_the_store_with_its_outbound_change(
    api, stored_records, record_store
):
    _integration, records = stored_records
    a = records["a"]
    response = api.patch(f"/api/v1/records/{a.id}/", {"data": {"name": "Ada L."}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {"id": "a", "name": "Ada L."}
    assert response.json()["outbound_change"]
    assert record_store.get(a.tenant_id, a.id).data["name"] == "Ada L."
    assert OutboundChange.objects.filter(record_id=a.id, operation="update").count() == 1
    theirs = api.patch(f"/api/v1/records/{records['theirs'].id}/", {"data": {}}, format="json")
    assert theirs.status_code == 404
    assert OutboundChange.objects.filter(record_id=records["theirs"].id).count() == 0


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_what_cosmos_db_cannot_page_is_refused_by_name(api, stored_records):
    for query, name in [
        ("external_id=a", "external_id"),
        ("ordering=-synced_at", "ordering"),
        ("deleted=true", "deleted"),
        ("page_size=0", "page_size"),
        ("cursor=not-a-continuation-token", "cursor"),
    ]:
        response = api.get(f"/api/v1/records/?{query}")
        assert response.status_code == 400, (query, response.json())
        assert name in response.json()["details"], response.json()


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_a_cursor_only_works_for_the_tenant_it_was_given_to(api, other_api, stored_records):
    next_url = api.get("/api/v1/records/?page_size=1").json()["next"]
    assert next_url and api.get(next_url).status_code == 200
    stolen = other_api.get(next_url)
    assert stolen.status_code == 400 and "cursor" in stolen.json()["details"]
