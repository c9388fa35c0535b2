"""Salesforce: SOQL paging, queryAll tombstones, upserts by External ID, INVALID_SESSION_ID
refreshed once, Sforce-Limit-Info, instance URL checks — fed by the documented fixtures."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from responses import matchers

from credentials.oauth import TokenResult
from credentials.services import credential_store_oauth_tokens
from integrations.adapters.base import AdapterConfigError
from integrations.services import integration_test_connection
from syncing.models import OutboundChange, SyncRun
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

pytestmark = [pytest.mark.embedded]

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v66.0"
CONTACT_FIELDS = (
    "Id, CreatedDate, LastModifiedDate, LastModifiedById, SystemModstamp, "
    "FirstName, LastName, Email, Phone, AccountId"
)
FULL_QUERY = f"SELECT {CONTACT_FIELDS} FROM Contact ORDER BY SystemModstamp, Id"  # noqa: S608
INTEGRATION_USER = "005Hs00000CstlIIAR"  # SOURCES.md: the Castiel integration user


def batch_header():
    return matchers.header_matcher({"Sforce-Query-Options": "batchSize=2000"})


class TestSalesforce(ProviderContract):
    slug = "salesforce"
    entity = "Contact"
    config = {"instance_url": INSTANCE}
    pages = ["contacts_query_page1", "contacts_query_page2", "contacts_query_page3"]
    errors = {
        "error_invalid_session_id": ("invalid_credentials", False),
        "error_malformed_query": ("bad_request", False),
        "error_not_found": ("not_found", False),
        "rate_limited": ("rate_limited", True),
    }
    connection = ("GET", f"{API}/limits", "limits")
    connection_failures = {
        "error_invalid_session_id": "invalid_credentials",
        "error_not_found": "not_found",
        "rate_limited": "rate_limited",
    }

    def mock_pages(self, rsps):
        answer(
            rsps,
            "GET",
            f"{API}/query",
            "salesforce",
            "contacts_query_page1",
            match=[*query(q=FULL_QUERY), batch_header()],
        )
        for previous, name in zip(self.pages, self.pages[1:], strict=False):
            nxt = fixture("salesforce", previous).body["nextRecordsUrl"]
            answer(rsps, "GET", INSTANCE + nxt, "salesforce", name)

    def first_page_request(self):
        return "GET", f"{API}/query"

    def expected_ids(self):
        return [r["Id"] for n in self.pages for r in fixture("salesforce", n).body["records"]]

    def expected_rate_limit(self):
        return (100_000, 100_000 - 1841)  # Sforce-Limit-Info: api-usage=1841/100000

    # -- pulls -------------------------------------------------------------------------

    @pytest.mark.django_db
    def test_accounts_page_with_next_records_url(self, tenant, rsps):
        integration = make_integration(
            tenant, "salesforce", self.config, credential=self.credential
        )
        answer(rsps, "GET", f"{API}/query", "salesforce", "accounts_query_page1")
        nxt = fixture("salesforce", "accounts_query_page1").body["nextRecordsUrl"]
        answer(rsps, "GET", INSTANCE + nxt, "salesforce", "accounts_query_page2")
        adapter = self.adapter(integration, "Account")
        first = adapter.fetch_page(None)
        assert first.next_cursor == {"next": nxt}
        assert "FROM Account" in rsps.calls[0].request.params["q"]
        last = adapter.fetch_page(first.next_cursor)
        assert last.next_cursor is None and len(last.records) == 2

    @pytest.mark.django_db(transaction=True)
    def test_incremental_runs_use_query_all_and_apply_tombstones(self, integration, rsps, enqueued):
        task = make_task(integration, "Contact")
        self.mock_pages(rsps)
        assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
        task.refresh_from_db()
        watermark = task.state["watermark"]
        assert watermark == "2024-05-09T18:49:51.000+0000"  # kept in Salesforce's spelling

        # queryAll returns rows deleted since the watermark with IsDeleted = true (the
        # fixture's last record, as queryAll would answer for it after a delete).
        gone = copy.deepcopy(fixture("salesforce", "contacts_query_page3").body)
        gone["records"][0]["IsDeleted"] = True
        incremental = (
            f"SELECT {CONTACT_FIELDS}, IsDeleted FROM Contact "  # noqa: S608
            "WHERE SystemModstamp >= 2024-05-09T18:49:51Z ORDER BY SystemModstamp, Id"
        )
        rsps.add("GET", f"{API}/queryAll", json=gone, match=query(q=incremental))
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert run.deleted == 1
        assert gone["records"][0]["Id"] not in records_of(task)
        assert len(records_of(task, include_deleted=True)) == 7

    @pytest.mark.django_db(transaction=True)
    def test_versions_our_integration_user_made_are_echoes(self, tenant, rsps, enqueued):
        integration = make_integration(
            tenant,
            "salesforce",
            {**self.config, "integration_user_id": INTEGRATION_USER},
            credential=self.credential,
        )
        task = make_task(integration, "Contact", mode="full")
        self.mock_pages(rsps)
        run_once(task, enqueued)
        # Every record comes back changed; those last modified by our user are our own
        # writes (echoes), the others remote changes.
        rsps.reset()
        for previous, name in zip([None, *self.pages], self.pages, strict=False):
            body = copy.deepcopy(fixture("salesforce", name).body)
            for record in body["records"]:
                record["Phone"] = "+1 555 0100"
            url = (
                f"{API}/query"
                if previous is None
                else INSTANCE + fixture("salesforce", previous).body["nextRecordsUrl"]
            )
            rsps.add("GET", url, json=body)
        run = run_once(task, enqueued)
        ours = [
            r
            for n in self.pages
            for r in fixture("salesforce", n).body["records"]
            if r["LastModifiedById"] == INTEGRATION_USER
        ]
        assert (run.echoes, run.updated) == (len(ours), 7 - len(ours))

    @pytest.mark.django_db
    def test_the_watermark_becomes_a_soql_datetime(self, integration):
        adapter = self.adapter(integration)
        soql = adapter.soql("2024-05-01T10:12:40.999+0200", deleted=True)
        assert "WHERE SystemModstamp >= 2024-05-01T08:12:40Z" in soql
        assert "IsDeleted" in soql

    # -- pushes ------------------------------------------------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_a_retried_create_is_an_upsert_by_external_id(
        self, tenant, rsps, enqueued, pushes, fast_pushes
    ):
        """Idempotent create: the first upsert's answer is lost; the retry upserts the same
        External ID value and Salesforce answers "already there" (created: false)."""
        integration = make_integration(
            tenant,
            "salesforce",
            {**self.config, "external_id_field": "Castiel_Id__c"},
            credential=self.credential,
        )
        make_task(integration, "Contact")
        change = local_changes.record_create(
            integration=integration,
            entity_type="Contact",
            data={"FirstName": "Ana", "LastName": "Silva", "Email": "ana@example.com"},
        ).change
        url = f"{API}/sobjects/Contact/Castiel_Id__c/{change.idempotency_key}"
        rsps.add("PATCH", url, body=requests.ConnectionError("reset after the write"))
        answer(rsps, "PATCH", url, "salesforce", "contact_upsert_updated")
        created_id = fixture("salesforce", "contact_upsert_updated").body["id"]
        # The single-record GET answers the sObject shape the query rows have.
        row = copy.deepcopy(fixture("salesforce", "contacts_query_page1").body["records"][0])
        row.update(
            Id=created_id,
            FirstName="Ana",
            LastName="Silva",
            Email="ana@example.com",
            LastModifiedById=INTEGRATION_USER,
        )
        row["attributes"]["url"] = f"/services/data/v66.0/sobjects/Contact/{created_id}"
        rsps.add("GET", f"{API}/sobjects/Contact/{created_id}", json=row)

        assert push_all(pushes) == {"retry": 1, "succeeded": 1}
        patches = [c for c in rsps.calls if c.request.method == "PATCH"]
        assert len(patches) == 2 and {c.request.url for c in patches} == {url}
        assert json.loads(patches[1].request.body) == {
            "FirstName": "Ana",
            "LastName": "Silva",
            "Email": "ana@example.com",
        }
        change.refresh_from_db()
        assert change.remote_id == created_id and change.replayed
        record = get_store().get(tenant.id, change.record_id)
        assert record.external_id == created_id and record.data["Id"] == created_id

    @pytest.mark.django_db(transaction=True)
    def test_update_and_delete_send_writable_fields_only(self, integration, rsps, enqueued, pushes):
        task = make_task(integration, "Contact")
        self.mock_pages(rsps)
        run_once(task, enqueued)
        first = fixture("salesforce", "contacts_query_page1").body["records"][0]
        record = next(
            r for r in get_store().iter_scope(_scope(task)) if r.external_id == first["Id"]
        )
        local_changes.record_update(
            tenant_id=integration.tenant_id,
            record_id=record.id,
            data={"Phone": "+1 512 555 0100", "SystemModstamp": "2030-01-01T00:00:00.000+0000"},
        )
        item = f"{API}/sobjects/Contact/{first['Id']}"
        patch = rsps.add("PATCH", item, status=204)
        rsps.add("GET", item, json={**first, "Phone": "+1 512 555 0100"})
        assert push_all(pushes) == {"succeeded": 1}
        assert json.loads(patch.calls[0].request.body) == {"Phone": "+1 512 555 0100"}
        # Conditional on the version last pulled (its LastModifiedDate, as an HTTP date).
        assert first["LastModifiedDate"].startswith("2024-05-01T08:12:40")
        assert patch.calls[0].request.headers["If-Unmodified-Since"] == (
            "Wed, 01 May 2024 08:12:40 GMT"
        )

        local_changes.record_delete(tenant_id=integration.tenant_id, record_id=record.id)
        delete = rsps.add("DELETE", item, status=204)
        assert push_all(pushes) == {"succeeded": 1}
        assert delete.call_count == 1
        # Salesforce takes no conditional headers on DELETE.
        assert "If-Unmodified-Since" not in delete.calls[0].request.headers

    @pytest.mark.django_db(transaction=True)
    @pytest.mark.parametrize("strategy", ["local_wins", "remote_wins"])
    def test_an_update_refused_with_412_follows_the_conflict_strategy(
        self, integration, rsps, enqueued, pushes, strategy
    ):
        task = make_task(integration, "Contact", push_conflict_strategy=strategy)
        self.mock_pages(rsps)
        run_once(task, enqueued)
        first = fixture("salesforce", "contacts_query_page1").body["records"][0]
        record = next(
            r for r in get_store().iter_scope(_scope(task)) if r.external_id == first["Id"]
        )
        change = local_changes.record_update(
            tenant_id=integration.tenant_id, record_id=record.id, data={"Phone": "+1 512 555 0101"}
        ).change
        item = f"{API}/sobjects/Contact/{first['Id']}"
        # Someone edited the contact in Salesforce after our pull: the precondition fails.
        theirs = {
            **first,
            "Phone": "+44 20 7946 0000",
            "LastModifiedDate": "2024-06-03T09:00:00.000+0000",
        }
        sent = []

        def patch(request):  # documented: 412 with only the status; nothing applied
            sent.append(request.headers.get("If-Unmodified-Since"))
            return (412 if "If-Unmodified-Since" in request.headers else 204), {}, ""

        rsps.add_callback("PATCH", item, callback=patch)
        rsps.add("GET", item, json=theirs)
        outcome = push_all(pushes)
        change.refresh_from_db()
        if strategy == "local_wins":
            assert outcome == {"succeeded": 1}
            assert sent == ["Wed, 01 May 2024 08:12:40 GMT", None]  # then pushed anyway
            assert "local wins" in change.status_reason
        else:
            assert outcome == {"skipped": 1} and sent == ["Wed, 01 May 2024 08:12:40 GMT"]
            assert "remote wins" in change.status_reason
            kept = get_store().get(integration.tenant_id, record.id)
            assert kept.data["Phone"] == "+44 20 7946 0000"

    @pytest.mark.django_db
    def test_several_upsert_matches_are_a_conflict(self, tenant, rsps):
        integration = make_integration(
            tenant,
            "salesforce",
            {**self.config, "external_id_field": "Castiel_Id__c"},
            credential=self.credential,
        )
        answer(
            rsps,
            "PATCH",
            f"{API}/sobjects/Contact/Castiel_Id__c/k1",
            "salesforce",
            "error_upsert_multiple_matches",
        )
        with pytest.raises(Exception) as caught:
            self.adapter(integration).create({"LastName": "X"}, idempotency_key="k1")
        assert (caught.value.reason, caught.value.retryable) == ("conflict", False)
        assert len(caught.value.details["matches"]) == 2

    @pytest.mark.django_db
    def test_a_required_field_error_names_the_field(self, integration, rsps):
        answer(
            rsps, "POST", f"{API}/sobjects/Contact/", "salesforce", "error_required_field_missing"
        )
        with pytest.raises(Exception) as caught:
            self.adapter(integration).create({"FirstName": "X"}, idempotency_key="k")
        error = caught.value
        assert (error.reason, error.provider_code) == (
            "validation_failed",
            "REQUIRED_FIELD_MISSING",
        )
        assert error.details["fields"] == ["LastName"] and "LastName" in str(error)

    # -- credentials and the instance URL ------------------------------------------------

    @pytest.mark.django_db
    def test_invalid_session_id_refreshes_once_and_retries(self, tenant, rsps):
        integration = make_integration(
            tenant,
            "salesforce",
            {**self.config, "oauth": {"client_id": "3MVG9castiel"}},
        )
        credential_store_oauth_tokens(
            integration=integration,
            result=TokenResult(
                secret={"access_token": "expired", "token_type": "Bearer", "refresh_token": "rt"},
                expires_at=None,
                refresh_expires_at=None,
                scopes=["api", "refresh_token"],
                refresh_token_rotated=False,
            ),
            requested_scopes=["api", "refresh_token"],
        )
        token = answer(
            rsps,
            "POST",
            "https://login.salesforce.com/services/oauth2/token",
            "salesforce",
            "oauth_token",
        )
        # /limits answers 401 INVALID_SESSION_ID, then (with the refreshed token) the limits.
        answers = iter(
            [fixture("salesforce", "error_invalid_session_id"), fixture("salesforce", "limits")]
        )

        def limits(request):
            found = next(answers)
            return found.status, {"Sforce-Limit-Info": "api-usage=1840/100000"}, found.text

        rsps.add_callback("GET", f"{API}/limits", callback=limits, content_type="application/json")
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (True, "ok"), result.message
        assert token.call_count == 1
        sent = [
            c.request.headers["Authorization"] for c in rsps.calls if "/limits" in c.request.url
        ]
        new_token = fixture("salesforce", "oauth_token").body["access_token"]
        assert sent == ["Bearer expired", f"Bearer {new_token}"]
        assert result.details["daily_api_requests"] == {"max": 100000, "remaining": 98152}
        # The refresh answer named the org's host and the connected user: both kept on the
        # integration (API calls go to the host; the user's own writes are echoes).
        integration.refresh_from_db()
        assert integration.config["instance_url"] == "https://acme.my.salesforce.com"
        assert integration.config["integration_user_id"] == "005Hs00000CstlIIAR"

    @pytest.mark.django_db
    def test_a_login_host_is_refused_as_instance_url(self, api):
        response = api.post(
            "/api/v1/integrations/",
            {
                "provider": "salesforce",
                "name": "CRM",
                "config": {"instance_url": "https://login.salesforce.com"},
            },
            format="json",
        )
        assert response.status_code == 400
        assert "login host" in response.json()["details"]["config"]["instance_url"]

    @pytest.mark.django_db
    def test_an_unresolvable_instance_url_is_reported_as_such(self, tenant):
        """No mock here: the real DNS lookup of a name that cannot exist (.invalid)."""
        integration = make_integration(
            tenant,
            "salesforce",
            {"instance_url": "https://acme-typo.my.salesforce.invalid"},
            credential=self.credential,
        )
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (False, "host_not_found"), result.message
        assert "acme-typo.my.salesforce.invalid" in result.message
        assert "instance_url" in result.message

    @pytest.mark.django_db
    def test_an_address_that_is_not_salesforce_is_reported(self, integration, rsps):
        rsps.add(
            "GET",
            f"{API}/limits",
            body="<html>Welcome to nginx</html>",
            status=200,
            content_type="text/html",
        )
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (False, "unexpected_response")
        assert "instance_url" in result.message

    @pytest.mark.django_db
    def test_a_record_id_that_is_not_one_is_refused_before_sending(self, integration):
        with pytest.raises(AdapterConfigError):
            self.adapter(integration).update("../limits", {}, idempotency_key="k")


def _scope(task):
    from syncing.records.stores.base import Scope

    return Scope(task.tenant_id, task.integration_id, task.entity_type)


def test_the_token_response_configures_the_org_host_and_integration_user():
    from integrations.providers.salesforce.tokens import config_from_token

    fields = {
        "instance_url": "https://globex.my.salesforce.com/",
        "id": "https://login.salesforce.com/id/00D000000000001/005000000000002",
        "issued_at": "1715335200412",
    }
    assert config_from_token(fields) == {
        "instance_url": "https://globex.my.salesforce.com",
        "integration_user_id": "005000000000002",
    }
    assert config_from_token({"instance_url": "http://insecure.example"}) == {}


# -- sObject Collections (``providers/salesforce/batch.py``) -----------------------------------

COLLECTIONS = f"{API}/composite/sobjects"


def pulled(tenant, rsps, enqueued, config=None):
    """An integration whose contacts were pulled (they have ids and versions)."""
    integration = make_integration(
        tenant,
        "salesforce",
        {"instance_url": INSTANCE, **(config or {})},
        credential=TestSalesforce.credential,
    )
    task = make_task(integration, "Contact")
    TestSalesforce().mock_pages(rsps)
    assert run_once(task, enqueued).status == SyncRun.Status.SUCCEEDED
    return integration, {r.external_id: r for r in get_store().iter_scope(_scope(task))}


@pytest.mark.django_db(transaction=True)
def test_creates_go_as_one_upsert_collection_and_are_read_back_in_one_request(
    tenant, rsps, enqueued, pushes
):
    integration = make_integration(
        tenant,
        "salesforce",
        {"instance_url": INSTANCE, "external_id_field": "Castiel_Id__c"},
        credential=TestSalesforce.credential,
    )
    make_task(integration, "Contact")
    changes = [
        local_changes.record_create(
            integration=integration,
            entity_type="Contact",
            data={"FirstName": first, "LastName": last, "Email": f"{first.lower()}@example.com"},
        ).change
        for first, last in (("Ana", "Silva"), ("Rui", "Costa"))
    ]
    upsert = answer(
        rsps, "PATCH", f"{COLLECTIONS}/Contact/Castiel_Id__c", "salesforce",
        "collection_contacts_upsert",
    )  # fmt: skip
    ids = [r["id"] for r in fixture("salesforce", "collection_contacts_upsert").body]
    read = answer(
        rsps,
        "GET",
        f"{COLLECTIONS}/Contact",
        "salesforce",
        "collection_contacts_retrieve",
        match=[matchers.query_param_matcher({"ids": ",".join(ids)}, strict_match=False)],
    )
    assert push_all(pushes) == {"succeeded": 2}
    # Two requests for two records — and two for two hundred.
    assert (upsert.call_count, read.call_count, len(rsps.calls)) == (1, 1, 2)
    sent = json.loads(upsert.calls[0].request.body)
    assert sent["allOrNone"] is False
    assert [r["Castiel_Id__c"] for r in sent["records"]] == [c.idempotency_key for c in changes]
    assert sent["records"][0]["attributes"] == {"type": "Contact"}
    assert sent["records"][0]["LastName"] == "Silva"
    for change, remote_id in zip(changes, ids, strict=True):
        change.refresh_from_db()
        assert change.status == "succeeded" and change.remote_id == remote_id
        assert change.remote_version == "2024-05-10T10:02:34.000+0000"
        assert get_store().get(tenant.id, change.record_id).external_id == remote_id
    # The second record was there already (a batch sent again after a lost answer).
    assert [c.replayed for c in changes] == [False, True]


@pytest.mark.django_db(transaction=True)
def test_unconditional_updates_batch_and_one_failed_record_is_its_own_dead_letter(
    tenant, rsps, enqueued, pushes
):
    _integration, by_id = pulled(tenant, rsps, enqueued)
    first, second = by_id["003Hs00001Pq7XhIAJ"], by_id["003Hs00001Pq7XiIAJ"]
    ok, refused = (
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"Phone": phone}
        ).change
        for record, phone in ((first, "+1 512 555 0100"), (second, "512"))
    )
    # Released by a conflict resolution (force: no version check), as an operator does.
    OutboundChange.objects.filter(pk__in=[ok.pk, refused.pk]).update(force=True)
    update = answer(rsps, "PATCH", COLLECTIONS, "salesforce", "collection_contacts_update_partial")
    # The read-back: the collection retrieve's shape (collection_contacts_retrieve.json).
    read = rsps.add(
        "GET", f"{COLLECTIONS}/Contact", json=[{**first.data, "Phone": "+1 512 555 0100"}]
    )
    assert push_all(pushes) == {"succeeded": 1, "dead": 1}
    sent = json.loads(update.calls[0].request.body)["records"]
    assert [(r["id"], r["Phone"]) for r in sent] == [
        ("003Hs00001Pq7XhIAJ", "+1 512 555 0100"),
        ("003Hs00001Pq7XiIAJ", "512"),
    ]
    assert "If-Unmodified-Since" not in update.calls[0].request.headers
    assert read.calls[0].request.params["ids"] == "003Hs00001Pq7XhIAJ"  # the saved one only
    refused.refresh_from_db()
    assert refused.error_code == "salesforce_field_custom_validation_exception"
    assert "(Phone)" in refused.status_reason
    assert refused.dead_letters.get().retryable is False


@pytest.mark.django_db(transaction=True)
def test_conditional_updates_keep_their_single_request_with_if_unmodified_since(
    tenant, rsps, enqueued, pushes
):
    _integration, by_id = pulled(tenant, rsps, enqueued)
    for record in list(by_id.values())[:2]:
        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={"Phone": "+1 512 555 0100"}
        )
        item = f"{API}/sobjects/Contact/{record.external_id}"
        rsps.add("PATCH", item, status=204)
        rsps.add("GET", item, json={**record.data, "Phone": "+1 512 555 0100"})
    assert push_all(pushes) == {"succeeded": 2}
    patches = [c for c in rsps.calls if c.request.method == "PATCH"]
    assert len(patches) == 2
    assert all("If-Unmodified-Since" in c.request.headers for c in patches)
    assert not any("/composite/" in c.request.url for c in rsps.calls)


@pytest.mark.django_db(transaction=True)
def test_deletes_go_as_one_collection_and_an_already_deleted_record_counts_as_deleted(
    tenant, rsps, enqueued, pushes
):
    _integration, by_id = pulled(tenant, rsps, enqueued)
    changes = [
        local_changes.record_delete(tenant_id=tenant.id, record_id=by_id[key].id).change
        for key in ("003Hs00001Pq7XhIAJ", "003Hs00001Pq7XiIAJ")
    ]
    delete = answer(
        rsps,
        "DELETE",
        COLLECTIONS,
        "salesforce",
        "collection_contacts_delete",
        match=query(ids="003Hs00001Pq7XhIAJ,003Hs00001Pq7XiIAJ", allOrNone="false"),
    )
    assert push_all(pushes) == {"succeeded": 2}
    assert delete.call_count == 1 and len(rsps.calls) == delete.call_count + 3  # the pull: 3
    for change in changes:
        change.refresh_from_db()
        assert change.status == "succeeded"
