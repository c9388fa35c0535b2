"""HubSpot CRM v3: list paging, incremental search, create/update/archive through the real
push worker, the 10 s / daily limits and error categories, v3 webhook batches — fed by the
documented fixtures at the HTTP boundary."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from responses import matchers

from syncing.models import SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from tests.integrations.providers.support import (
    ProviderContract,
    answer,
    fixture,
    make_integration,
    query,
)
from tests.syncing.helpers import make_task, records_of, run_once
from tests.syncing.outbound_support import push_all
from tests.webhooks.factories import make_event, make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded]

API = "https://api.hubapi.com"
CONTACTS = f"{API}/crm/v3/objects/contacts"
COMPANIES = f"{API}/crm/v3/objects/companies"
PROPERTIES = "email,firstname,lastname,phone,company,lastmodifieddate"


def list_query(**extra):
    return query(limit=100, properties=PROPERTIES, **extra)


class TestHubSpot(ProviderContract):
    slug = "hubspot"
    entity = "contacts"
    pages = ["contacts_list_page1", "contacts_list_page2", "contacts_list_page3"]
    errors = {
        "error_invalid_authentication": ("invalid_credentials", False),
        "error_expired_authentication": ("invalid_credentials", False),
        "error_missing_scopes": ("missing_scope", False),
        "error_not_found": ("not_found", False),
        "rate_limited": ("rate_limited", True),
        "rate_limited_daily": ("rate_limited", True),
    }
    webhooks = {
        "webhook_contact_events": [
            ("contact.creation", "contacts", "301", False, False),
            ("contact.propertyChange", "contacts", "301", False, False),
        ],
        "webhook_company_deletion": [
            ("company.deletion", "companies", "18620034512", False, True),
        ],
    }
    connection = ("GET", CONTACTS, "contacts_list_page1")
    connection_failures = {
        "error_invalid_authentication": "invalid_credentials",
        "error_missing_scopes": "missing_scope",
        "rate_limited_daily": "rate_limited",
    }

    def mock_pages(self, rsps):
        after = None
        for name in self.pages:
            extra = {"after": after} if after else {}
            answer(rsps, "GET", CONTACTS, "hubspot", name, match=list_query(**extra))
            after = (fixture("hubspot", name).body.get("paging") or {}).get("next", {}).get("after")

    def first_page_request(self):
        return "GET", CONTACTS

    def expected_ids(self):
        return [r["id"] for n in self.pages for r in fixture("hubspot", n).body["results"]]

    def expected_rate_limit(self):
        # The tightest of the three quotas the headers report: 9 of 10 this second.
        return (10, 9)

    # -- HubSpot specifics -------------------------------------------------------------

    @pytest.mark.django_db
    def test_rate_limit_waits_follow_the_policy_named(self, tenant, rsps):
        waits = {}
        for name in ("rate_limited", "rate_limited_daily", "rate_limited_search"):
            rsps.reset()
            answer(rsps, "GET", CONTACTS, "hubspot", name)
            integration = make_integration(tenant, "hubspot", credential=self.credential, name=name)
            with pytest.raises(Exception) as caught:
                self.adapter(integration).fetch_page(None)
            waits[caught.value.provider_code] = caught.value.retry_after
        assert waits == {"TEN_SECONDLY_ROLLING": 10.0, "DAILY": 3600.0, "SECONDLY": 1.0}

    @pytest.mark.django_db
    def test_missing_scopes_are_named(self, integration, rsps):
        answer(rsps, "GET", CONTACTS, "hubspot", "error_missing_scopes")
        from integrations.services import integration_test_connection

        result = integration_test_connection(integration=integration)
        assert result.code == "missing_scope"
        assert result.details["required_scopes"] == ["crm.objects.companies.read"]
        assert "crm.objects.companies.read" in result.message

    @pytest.mark.django_db(transaction=True)
    def test_an_incremental_run_searches_from_the_watermark(self, integration, rsps, enqueued):
        task = make_task(integration, "contacts", state={"watermark": "2024-05-06T00:00:00.000Z"})
        search = f"{CONTACTS}/search"
        base = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": 1714953600000,  # 2024-05-06T00:00:00Z in ms
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPERTIES.split(","),
            "limit": 200,
        }
        answer(
            rsps,
            "POST",
            search,
            "hubspot",
            "contacts_search_page1",
            match=[matchers.json_params_matcher(base)],
        )
        answer(
            rsps,
            "POST",
            search,
            "hubspot",
            "contacts_search_page2",
            match=[matchers.json_params_matcher({**base, "after": "3"})],
        )
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert (run.pages, run.created) == (2, 4)
        task.refresh_from_db()
        assert task.state["watermark"] == "2024-05-09T19:55:47.682Z"

    @pytest.mark.django_db
    def test_a_search_re_anchors_before_the_10000_result_cap(self, integration, rsps):
        body = copy.deepcopy(fixture("hubspot", "contacts_search_page1").body)
        body["paging"]["next"]["after"] = "9900"
        rsps.add("POST", f"{CONTACTS}/search", json=body)
        page = self.adapter(integration).fetch_page(
            {"mode": "search", "since": "2024-05-06T00:00:00.000Z", "after": "9700"}
        )
        last = body["results"][-1]["updatedAt"]
        assert page.next_cursor == {"mode": "search", "since": last, "after": None}

    @pytest.mark.django_db
    def test_companies_use_their_own_modification_property(self, tenant, rsps):
        integration = make_integration(tenant, "hubspot", credential=self.credential)
        answer(
            rsps,
            "GET",
            COMPANIES,
            "hubspot",
            "companies_list_page1",
            match=query(limit=100, properties="name,domain,hs_lastmodifieddate"),
        )
        page = self.adapter(integration, "companies").fetch_page(None)
        assert page.next_cursor == {"mode": "list", "after": "MTg2MjAwMzQ1OTkK"}

    # -- push through the outbox and the push worker ------------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_create_update_and_archive_a_contact(self, integration, rsps, enqueued, pushes):
        make_task(integration, "contacts")
        created = fixture("hubspot", "contact_create").body
        change = local_changes.record_create(
            integration=integration,
            entity_type="contacts",
            data={"properties": {k: created["properties"][k] for k in PROPERTIES.split(",")[:5]}},
        ).change
        post = answer(rsps, "POST", CONTACTS, "hubspot", "contact_create")
        assert push_all(pushes) == {"succeeded": 1}
        sent = json.loads(post.calls[0].request.body)
        assert sent == {
            "properties": {
                "email": "ana.silva@castiel-demo.example.com",
                "firstname": "Ana",
                "lastname": "Silva",
                "phone": "+351 21 555 0177",
                "company": "Castiel Demo",
            }
        }
        record = get_store().get(integration.tenant_id, change.record_id)
        assert record.external_id == "301" and record.remote_version == created["updatedAt"]

        # The phone changes locally: only that property is sent, read-only ones never.
        data = copy.deepcopy(record.data)
        data["properties"]["phone"] = "+351 21 555 0188"
        local_changes.record_update(tenant_id=integration.tenant_id, record_id=record.id, data=data)
        patch = answer(rsps, "PATCH", f"{CONTACTS}/301", "hubspot", "contact_update")
        assert push_all(pushes) == {"succeeded": 1}
        sent = json.loads(patch.calls[0].request.body)["properties"]
        assert sent["phone"] == "+351 21 555 0188"
        assert not {"hs_object_id", "createdate", "lastmodifieddate"} & set(sent)

        local_changes.record_delete(tenant_id=integration.tenant_id, record_id=record.id)
        archive = rsps.add("DELETE", f"{CONTACTS}/301", status=204)
        assert push_all(pushes) == {"succeeded": 1}
        assert archive.call_count == 1

    @pytest.mark.django_db(transaction=True)
    def test_an_existing_contact_email_is_the_created_contact(
        self, integration, rsps, enqueued, pushes
    ):
        """No idempotency keys: a create answered 409 "Contact already exists. Existing ID:
        301" adopts that contact instead of failing (the earlier attempt made it)."""
        make_task(integration, "contacts")
        change = local_changes.record_create(
            integration=integration,
            entity_type="contacts",
            data={"email": "ana.silva@castiel-demo.example.com", "firstname": "Ana"},
        ).change
        post = answer(rsps, "POST", CONTACTS, "hubspot", "error_conflict_contact_exists")
        answer(rsps, "GET", f"{CONTACTS}/301", "hubspot", "contact_create")
        assert push_all(pushes) == {"succeeded": 1}
        # Flat fields are taken as properties.
        assert json.loads(post.calls[0].request.body) == {
            "properties": {"email": "ana.silva@castiel-demo.example.com", "firstname": "Ana"}
        }
        change.refresh_from_db()
        assert change.remote_id == "301" and change.replayed

    @pytest.mark.django_db(transaction=True)
    def test_a_company_create_whose_answer_was_lost_lands_once(
        self, tenant, rsps, enqueued, pushes, fast_pushes
    ):
        """With unique_id_property the create writes its idempotency key there, and the retry
        reads the company by that unique value instead of creating a second one."""
        integration = make_integration(
            tenant, "hubspot", {"unique_id_property": "castiel_id"}, credential=self.credential
        )
        make_task(integration, "companies")
        change = local_changes.record_create(
            integration=integration,
            entity_type="companies",
            data={"name": "Castiel Demo", "domain": "castiel-demo.example.com"},
        ).change
        post = rsps.add("POST", COMPANIES, body=requests.ConnectionError("reset after the write"))
        made = copy.deepcopy(fixture("hubspot", "company_create").body)
        made["properties"]["castiel_id"] = change.idempotency_key
        lookup = rsps.add(
            "GET",
            f"{COMPANIES}/{change.idempotency_key}",
            json=made,
            match=[matchers.query_param_matcher({"idProperty": "castiel_id"}, strict_match=False)],
        )
        assert push_all(pushes) == {"retry": 1, "succeeded": 1}
        assert post.call_count == 1, "no second create"
        assert json.loads(post.calls[0].request.body)["properties"] == {
            "name": "Castiel Demo",
            "domain": "castiel-demo.example.com",
            "castiel_id": change.idempotency_key,
        }
        assert lookup.call_count == 1
        change.refresh_from_db()
        assert (change.remote_id, change.replayed) == (made["id"], True)

    @pytest.mark.django_db
    def test_a_unique_id_property_must_be_a_property_name(self, api):
        response = api.post(
            "/api/v1/integrations/",
            {"name": "h", "provider": "hubspot", "config": {"unique_id_property": "Castiel Id"}},
            format="json",
        )
        assert response.status_code == 400
        assert "unique_id_property" in json.dumps(response.json())

    @pytest.mark.django_db(transaction=True)
    def test_a_validation_error_is_a_dead_letter(self, integration, rsps, enqueued, pushes):
        make_task(integration, "companies")
        local_changes.record_create(
            integration=integration, entity_type="companies", data={"favourite_colour": "blue"}
        )
        answer(rsps, "POST", COMPANIES, "hubspot", "error_validation")
        assert push_all(pushes) == {"dead": 1}
        from syncing.models import DeadLetter

        letter = DeadLetter.objects.get()
        assert letter.error_code == "http_400" and "PROPERTY_DOESNT_EXIST" in letter.error_message

    # -- webhooks through the real processing pipeline ----------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_a_deletion_webhook_removes_the_company(
        self, integration, rsps, enqueued, no_push_rules
    ):
        task = make_task(integration, "companies", mode="full")
        answer(rsps, "GET", COMPANIES, "hubspot", "companies_list_page1")
        after = fixture("hubspot", "companies_list_page1").body["paging"]["next"]["after"]
        answer(
            rsps,
            "GET",
            COMPANIES,
            "hubspot",
            "companies_list_page2",
            match=query(limit=100, properties="name,domain,hs_lastmodifieddate", after=after),
        )
        assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
        assert "18620034512" in records_of(task)

        registration = make_registration(
            integration.tenant, scheme="hubspot", parser="hubspot", integration=integration
        )
        body = json.dumps(fixture("hubspot", "webhook_company_deletion").body).encode()
        event = make_event(registration, status=WebhookEvent.Status.RECEIVED, body=body)
        assert processing.event_process(event_id=event.pk) == "processed"
        event.refresh_from_db()
        assert [a["action"] for a in event.actions] == [
            "sync.delete_record",
            "push.evaluate_rules",
        ]
        assert "18620034512" not in records_of(task)


# -- batch writes (``providers/hubspot/batch.py``) ---------------------------------------------

CREDENTIAL = ("bearer_token", {"token": "test-token-not-real"}, {})


def pulled(tenant, rsps, enqueued, config=None):
    """An integration whose contacts 151… were pulled (they have external ids to update)."""
    integration = make_integration(tenant, "hubspot", config or {}, credential=CREDENTIAL)
    TestHubSpot().mock_pages(rsps)
    task = make_task(integration, "contacts", mode="full")
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    by_id = {r.external_id: r for r in get_store().iter_scope(_scope(task))}
    return integration, by_id


def _scope(task):
    from syncing.records.stores.base import Scope

    return Scope(task.tenant_id, task.integration_id, task.entity_type)


def _phone(record, phone):
    data = copy.deepcopy(record.data)
    data["properties"]["phone"] = phone
    return data


@pytest.mark.django_db(transaction=True)
def test_batch_update_multistatus_fails_only_the_named_input(tenant, rsps, enqueued, pushes):
    _integration, by_id = pulled(tenant, rsps, enqueued)
    ok = local_changes.record_update(
        tenant_id=tenant.id, record_id=by_id["151"].id, data=_phone(by_id["151"], "+1 617 555 0199")
    ).change
    gone = local_changes.record_update(
        tenant_id=tenant.id, record_id=by_id["152"].id, data=_phone(by_id["152"], "+1 0")
    ).change
    batch = answer(
        rsps, "POST", f"{CONTACTS}/batch/update", "hubspot", "batch_contacts_update_multistatus"
    )
    assert push_all(pushes) == {"succeeded": 1, "dead": 1}
    assert batch.call_count == 1
    sent = json.loads(batch.calls[0].request.body)["inputs"]
    assert sorted(i["id"] for i in sent) == ["151", "152"]
    assert next(i for i in sent if i["id"] == "151")["properties"]["phone"] == "+1 617 555 0199"
    ok.refresh_from_db()
    gone.refresh_from_db()
    assert ok.status == "succeeded" and ok.remote_version == "2024-05-10T11:16:20.305Z"
    assert gone.status == "dead" and gone.error_code == "hubspot_object_not_found"
    assert gone.dead_letters.get().retryable is False
    assert get_store().get(tenant.id, ok.record_id).remote_version == ok.remote_version


@pytest.mark.django_db(transaction=True)
def test_batch_create_matches_results_by_the_unique_value(tenant, rsps, enqueued, pushes):
    """HubSpot does not promise the inputs' order: results are matched by the unique
    property each create writes (the change's idempotency key)."""
    integration = make_integration(
        tenant, "hubspot", {"unique_id_property": "castiel_id"}, credential=CREDENTIAL
    )
    make_task(integration, "contacts")
    rita = local_changes.record_create(
        integration=integration,
        entity_type="contacts",
        data={"email": "rita.lopes@castiel-demo.example.com", "firstname": "Rita"},
    ).change
    joao = local_changes.record_create(
        integration=integration,
        entity_type="contacts",
        data={"email": "joao.costa@castiel-demo.example.com", "firstname": "João"},
    ).change
    documented = fixture("hubspot", "batch_contacts_create")
    text = documented.text.replace("KEY-1", rita.idempotency_key).replace(
        "KEY-2", joao.idempotency_key
    )
    batch = rsps.add(
        "POST", f"{CONTACTS}/batch/create", body=text, status=201, content_type="application/json"
    )
    assert push_all(pushes) == {"succeeded": 2}
    assert batch.call_count == 1
    sent = json.loads(batch.calls[0].request.body)["inputs"]
    assert [i["properties"]["castiel_id"] for i in sent] == [
        rita.idempotency_key,
        joao.idempotency_key,
    ]
    for change, remote in ((rita, "401"), (joao, "402")):
        change.refresh_from_db()
        assert change.remote_id == remote
        assert get_store().get(tenant.id, change.record_id).external_id == remote


@pytest.mark.django_db(transaction=True)
def test_a_batch_refused_as_a_whole_goes_one_by_one(tenant, rsps, enqueued, pushes):
    integration = make_integration(
        tenant, "hubspot", {"unique_id_property": "castiel_id"}, credential=CREDENTIAL
    )
    make_task(integration, "contacts")
    for name in ("Ana", "Rui"):
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"firstname": name}
        )
    batch = answer(
        rsps, "POST", f"{CONTACTS}/batch/create", "hubspot", "error_conflict_contact_exists"
    )
    single = answer(rsps, "POST", CONTACTS, "hubspot", "contact_create")
    assert push_all(pushes) == {"succeeded": 2}
    assert (batch.call_count, single.call_count) == (1, 2)


@pytest.mark.django_db(transaction=True)
def test_batch_archive_is_one_request(tenant, rsps, enqueued, pushes):
    _integration, by_id = pulled(tenant, rsps, enqueued)
    for external_id in ("151", "152", "153"):
        local_changes.record_delete(tenant_id=tenant.id, record_id=by_id[external_id].id)
    archive = rsps.add("POST", f"{CONTACTS}/batch/archive", status=204)
    assert push_all(pushes) == {"succeeded": 3}
    assert archive.call_count == 1
    assert sorted(i["id"] for i in json.loads(archive.calls[0].request.body)["inputs"]) == [
        "151",
        "152",
        "153",
    ]
