"""The admin's record pages serve the configured record store: the ORM, or Cosmos DB
(cosmosdb-server) — list, page, open, edit and delete a record through the store."""

from __future__ import annotations

import html
import re

import pytest

from syncing.admin import store_records
from syncing.models import OutboundChange

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def listed(page: str) -> list[str]:
    return re.findall(r'<tr data-record="([0-9a-f-]+)">', page)


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_the_list_reads_one_tenant_a_page_at_a_time_from_the_store(
    operator, stored_records, tenant, monkeypatch
):
    integration, records = stored_records
    url = f"/admin/syncing/record/?tenant={tenant.pk}&integration={integration.pk}"
    page = operator.get(url).content.decode()
    assert "cosmos" in page
    assert sorted(listed(page)) == sorted(str(records[k].id) for k in ("a", "b"))
    with_deleted = operator.get(url + "&deleted=1").content.decode()
    assert sorted(listed(with_deleted)) == sorted(str(records[k].id) for k in "abc")

    monkeypatch.setattr(store_records, "PAGE_SIZE", 1)
    seen, query = [], url.split("?", 1)[1]
    while query:
        page = operator.get(f"/admin/syncing/record/?{query}").content.decode()
        seen += listed(page)
        more = re.search(r'<a href="\?([^"]+)" id="next-page">', page)
        query = html.unescape(more.group(1)) if more else None
    assert sorted(seen) == sorted(str(records[k].id) for k in ("a", "b"))

    forged = operator.get(url + "&cursor=not-ours", follow=True).content.decode()
    assert "not valid here" in forged and len(listed(forged)) == 1  # the first page


@pytest.mark.parametrize("record_store", ["orm", "cosmos"], indirect=True)
def test_a_record_page_opens_edits_and_deletes_through_the_store(
    operator, stored_records, record_store
):
    _integration, records = stored_records
    a = records["a"]
    change_url = f"/admin/syncing/record/{a.id}/change/"
    page = operator.get(change_url)
    assert page.status_code == 200 and "Ada" in page.content.decode()

    response = operator.post(change_url, {"data": '{"id": "a", "name": "Ada L."}'})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert record_store.get(a.tenant_id, a.id).data == {"id": "a", "name": "Ada L."}
    assert OutboundChange.objects.filter(record_id=a.id, operation="update").count() == 1

    response = operator.post(f"/admin/syncing/record/{a.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert record_store.get(a.tenant_id, a.id).deleted_at is not None
    assert OutboundChange.objects.filter(record_id=a.id, operation="delete").count() == 1

    assert operator.get("/admin/syncing/record/not-a-uuid/change/").status_code in (302, 404)


def test_the_record_pages_say_the_store_is_unavailable_during_an_outage(
    operator, cosmos_outage_store, cosmos_proxy, tenant
):
    from syncing.records.stores.base import Scope
    from tests.factories import IntegrationFactory
    from tests.syncing.fixtures import COSMOS_TEST_KEY
    from tests.syncing.records.test_stores import make

    scope = Scope(tenant.id, IntegrationFactory(tenant=tenant).id, "contacts")
    a = make(scope, "a", name="Ada")
    cosmos_outage_store.write(scope, [a], [])
    with cosmos_proxy.down():
        for url in (
            "/admin/syncing/record/",
            f"/admin/syncing/record/{a.id}/change/",
            f"/admin/syncing/record/{a.id}/delete/",
        ):
            response = operator.get(url)
            page = response.content.decode()
            assert response.status_code == 503, (url, response.status_code)
            assert "record store is unavailable" in page and "cosmos" in page, url
            assert COSMOS_TEST_KEY not in page
    assert operator.get(f"/admin/syncing/record/{a.id}/change/").status_code == 200


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_admin_search_says_it_is_not_supported_with_cosmos_db(operator, stored_records, tenant):
    page = operator.get(f"/admin/syncing/record/?tenant={tenant.pk}&q=Ada").content.decode()
    assert "Search is not supported with the cosmos record store" in page
    assert len(listed(page)) == 2  # the filters still apply; the search is not silently used
