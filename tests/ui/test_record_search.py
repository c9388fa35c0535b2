"""Records show and are found by their content: each entity type's display fields (the
provider's catalogue entry, or a generic REST integration's ``config.display_fields``) make
the admin list's columns, the record page's title, the admin search, and the records API's
``display`` and ``?q=`` — on the ORM store; the Cosmos DB store says search is not supported."""

from __future__ import annotations

import re

import pytest

from integrations.providers import registry
from integrations.providers.base import display_values
from syncing.models import Record
from tests.conftest import client_for
from tests.factories import IntegrationFactory
from tests.syncing.helpers import make_task
from tests.syncing.pipeline_support import apply_page
from tests.ui.population import contacts

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


def rows(page: str) -> list[str]:
    return re.findall(r'<th class="field-title"><a href="[^"]+">([^<]+)<', page)


def test_a_contact_is_found_by_name_in_the_admin_and_shown_by_it(operator, tenant):
    contacts(tenant)
    page = operator.get("/admin/syncing/record/").content.decode()
    assert {"Ada Lovelace", "Grace Hopper"} <= set(rows(page))
    assert "ada@acme.example" in page  # the second display field, in the details column

    # Every word, in any display field: the first name and the company's domain.
    found = operator.get("/admin/syncing/record/?q=ada+acme").content.decode()
    assert rows(found) == ["Ada Lovelace"]
    assert rows(operator.get("/admin/syncing/record/?q=Hopper").content.decode()) == [
        "Grace Hopper"
    ]
    nothing = operator.get("/admin/syncing/record/?q=nobody").content.decode()
    assert 'id="empty-state"' in nothing and "Show all records" in nothing

    ada = Record.objects.get(external_id="c-101")
    record_page = operator.get(f"/admin/syncing/record/{ada.pk}/change/").content.decode()
    assert "<h1>Ada Lovelace (contacts, Acme CRM)</h1>" in record_page
    # A long value is cut in the list, the whole of it on hover.
    assert 'title="katherine.johnson@langley-research-center.example"' in page


def test_a_contact_is_found_by_name_in_the_api(tenant, other_tenant):
    contacts(tenant)
    contacts(other_tenant)  # never in tenant's answers
    api = client_for(tenant)
    body = api.get("/api/v1/records/", {"q": "lovelace"}).json()
    assert [r["external_id"] for r in body["results"]] == ["c-101"]
    assert body["results"][0]["display"] == {
        "title": "Ada Lovelace",
        "fields": {"name": "Ada Lovelace", "email": "ada@acme.example"},
    }
    both = api.get("/api/v1/records/", {"q": "a", "entity_type": "contacts"}).json()
    assert both["count"] == 3  # "a" is in every name or email
    assert api.get("/api/v1/records/", {"q": "ada grace"}).json()["count"] == 0


def test_catalogue_display_fields_name_a_hubspot_contact(tenant):
    hubspot = IntegrationFactory(tenant=tenant, provider="hubspot", name="HubSpot")
    task = make_task(hubspot, "contacts")
    apply_page(
        task,
        [
            {
                "id": "501",
                "properties": {
                    "firstname": "Ada",
                    "lastname": "Lovelace",
                    "email": "ada@hubspot.example",
                },
            }
        ],
    )
    provider = registry.get("hubspot")
    record = Record.objects.get(external_id="501")
    assert display_values(provider.display_fields_for("contacts"), record.data) == [
        ("properties.firstname properties.lastname", "Ada Lovelace"),
        ("properties.email", "ada@hubspot.example"),
    ]
    body = client_for(tenant).get("/api/v1/records/", {"q": "Ada Lovelace"}).json()
    assert [r["display"]["title"] for r in body["results"]] == ["Ada Lovelace"]


def test_generic_rest_display_fields_are_validated(tenant):
    provider = registry.get("generic_rest")
    config = {"base_url": "https://crm.example.com/api/"}
    assert provider.validate_config({**config, "display_fields": {"contacts": ["name"]}}) == {}
    errors = provider.validate_config({**config, "display_fields": {"contacts": "name"}})
    assert "display_fields" in errors


@pytest.mark.parametrize("record_store", ["cosmos"], indirect=True)
def test_cosmos_db_says_search_is_not_supported(operator, stored_records, tenant):
    answer = client_for(tenant).get("/api/v1/records/", {"q": "ada"})
    assert answer.status_code == 400
    assert "search is not supported with the Cosmos DB record store" in answer.content.decode()
    page = operator.get(f"/admin/syncing/record/?tenant={tenant.pk}&q=ada").content.decode()
    assert "Search is not supported with the cosmos record store" in page
