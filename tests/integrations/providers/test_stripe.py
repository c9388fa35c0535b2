"""Stripe: customers synced, pushed and received by webhook against a RUNNING localstripe
— the real server, not mocks; the documented error shapes (which localstripe does
not reproduce) are checked with Stripe's own fixtures at the HTTP boundary.

localstripe gaps and how the adapter copes (each has a test below): no ``created[gte]`` on
the customer list (the adapter filters the pages itself), no search (a retried create finds
its customer in the newest page instead), and no ``Idempotency-Key`` support (a retried
create is found by its ``metadata.castiel_id`` marker).
"""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from castiel.http.errors import RateLimitedError
from integrations.adapters.base import adapter_for
from integrations.services import integration_test_connection
from syncing.models import SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from tests.integrations.providers.support import (
    ProviderContract,
    answer,
    fixture,
    make_integration,
    query,
    walk,
)
from tests.syncing.helpers import make_task, records_of, run_once
from tests.syncing.outbound_support import push_all
from tests.webhooks import live
from tests.webhooks.factories import make_registration
from webhooks import processing
from webhooks.models import WebhookEvent

API = "https://api.stripe.com"
KEY = "sk_test_castiel_adapter"
STRIPE_KEY = ("api_key", {"api_key": KEY}, {"name": "Authorization", "prefix": "Bearer "})
WEBHOOK_SECRET = "whsec_castiel_adapter_test"


# ------------------------------------------------------------------ documented shapes (mocked)


@pytest.mark.embedded
class TestStripeDocumentedAnswers(ProviderContract):
    slug = "stripe"
    entity = "customers"
    credential = STRIPE_KEY
    pages = ["customers_list_page1", "customers_list_page2", "customers_list_page3"]
    errors = {
        "error_invalid_api_key": ("invalid_credentials", False),
        "error_no_such_customer": ("not_found", False),
        "error_email_invalid": ("validation_failed", False),
        "error_idempotency_key_reused": ("conflict", False),
        "error_lock_timeout": ("conflict", True),
        "rate_limited": ("rate_limited", True),
    }
    webhooks = {
        "webhook_customer_created": [
            ("customer.created", "customers", "cus_Q5xK2pR7tYwZ3m", True, False)
        ],
        "webhook_customer_updated": [
            ("customer.updated", "customers", "cus_Q5xK2pR7tYwZ3m", True, False)
        ],
        "webhook_customer_deleted": [
            ("customer.deleted", "customers", "cus_Q5xK2pR7tYwZ3m", True, True)
        ],
    }
    connection = ("GET", f"{API}/v1/customers", "customers_list_page1")
    connection_failures = {
        "error_invalid_api_key": "invalid_credentials",
        "rate_limited": "rate_limited",
    }
    # The sync, push and webhook runs are against localstripe (below), not mocks.
    test_a_sync_run_lands_every_record_in_the_store = None

    def mock_pages(self, rsps):
        after = None
        for name in self.pages:
            extra = {"starting_after": after} if after else {}
            answer(
                rsps, "GET", f"{API}/v1/customers", "stripe", name, match=query(limit=100, **extra)
            )
            after = fixture("stripe", name).body["data"][-1]["id"]

    def first_page_request(self):
        return "GET", f"{API}/v1/customers"

    def expected_ids(self):
        return [c["id"] for n in self.pages for c in fixture("stripe", n).body["data"]]

    @pytest.mark.django_db
    def test_a_rate_limit_has_no_retry_after_so_work_backs_off(self, integration, rsps):
        answer(rsps, "GET", f"{API}/v1/customers", "stripe", "rate_limited")
        with pytest.raises(RateLimitedError) as caught:
            self.adapter(integration).fetch_page(None)
        assert caught.value.retry_after is None  # full-jitter backoff decides
        assert caught.value.details["limited_reason"] == "global-rate"

    @pytest.mark.django_db
    def test_a_replayed_create_is_reported_as_replayed(self, integration, rsps):
        post = answer(rsps, "POST", f"{API}/v1/customers", "stripe", "customer_create_replayed")
        key = fixture("stripe", "customer_create_replayed").headers["Idempotency-Key"]
        result = self.adapter(integration).create(
            {"email": "ana.silva@castiel-demo.example.com", "name": "Ana Silva", "id": "x"},
            idempotency_key=key,
        )
        assert result.replayed and result.external_id == "cus_Q5xK2pR7tYwZ3m"
        request = post.calls[0].request
        assert request.headers["Idempotency-Key"] == key
        assert request.headers["Stripe-Version"] == "2025-04-30.basil"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        sent = dict(p.split("=", 1) for p in request.body.split("&"))
        assert sent["metadata%5Bcastiel_id%5D"] == key and "id" not in sent


# ------------------------------------------------------------------------- live localstripe


@pytest.fixture
def localstripe(spawn):
    """A fresh localstripe (NO_PICKLE, in memory) per test: each starts from an empty
    account."""
    url = live.start_localstripe(spawn)
    client = stripe.StripeClient(KEY, base_addresses={"api": url})
    return url, client


def stripe_integration(tenant, url, **config):
    return make_integration(
        tenant,
        "stripe",
        {"api_base": url, "mode": "test", **config},
        credential=STRIPE_KEY,
        name=f"Stripe {time.monotonic_ns()}",
    )


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
class TestStripeAgainstLocalstripe:
    def test_a_sync_pages_through_every_customer_and_sees_changes(
        self, tenant, localstripe, enqueued
    ):
        url, client = localstripe
        made = [
            client.v1.customers.create(params={"email": f"c{i}@example.com", "name": f"C {i}"})
            for i in range(5)
        ]
        integration = stripe_integration(tenant, url, page_size=2)
        task = make_task(integration, "customers", mode="full")
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert (run.pages, run.created) == (3, 5)
        stored = records_of(task)
        assert set(stored) == {c.id for c in made}
        assert stored[made[0].id]["email"] == "c0@example.com"

        client.v1.customers.update(made[1].id, params={"name": "Renamed"})
        client.v1.customers.delete(made[2].id)
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert (run.updated, run.deleted, run.unchanged) == (1, 1, 3)
        assert records_of(task)[made[1].id]["name"] == "Renamed"
        assert made[2].id not in records_of(task)

    def test_a_created_filter_the_server_lacks_is_applied_here(self, tenant, localstripe):
        url, client = localstripe
        for i in range(3):
            client.v1.customers.create(params={"email": f"f{i}@example.com"})
        past = stripe_integration(tenant, url, page_size=2, created_gte="2020-01-01T00:00:00Z")
        adapter = adapter_for(past, "customers")
        pages = walk(adapter)
        assert sum(len(p.records) for p in pages) == 3
        assert {p.info["created_filter"] for p in pages} == {"local"}
        future = stripe_integration(tenant, url, created_gte="2100-01-01T00:00:00Z")
        assert walk(adapter_for(future, "customers"))[0].records == []

    def test_create_update_delete_through_the_push_worker(
        self, tenant, localstripe, enqueued, pushes
    ):
        url, client = localstripe
        integration = stripe_integration(tenant, url)
        make_task(integration, "customers")
        change = local_changes.record_create(
            integration=integration,
            entity_type="customers",
            data={"email": "ana@example.com", "name": "Ana", "metadata": {"source": "crm"}},
        ).change
        assert push_all(pushes) == {"succeeded": 1}
        record = get_store().get(tenant.id, change.record_id)
        customer = client.v1.customers.retrieve(record.external_id)
        assert (customer.email, customer.name) == ("ana@example.com", "Ana")
        assert customer.metadata["castiel_id"] == change.idempotency_key
        assert customer.metadata["source"] == "crm"

        local_changes.record_update(
            tenant_id=tenant.id, record_id=record.id, data={**record.data, "phone": "+351210000"}
        )
        assert push_all(pushes) == {"succeeded": 1}
        assert client.v1.customers.retrieve(record.external_id).phone == "+351210000"

        local_changes.record_delete(tenant_id=tenant.id, record_id=record.id)
        assert push_all(pushes) == {"succeeded": 1}
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.customers.retrieve(record.external_id)

    def test_a_retried_create_makes_one_customer(
        self, tenant, localstripe, enqueued, pushes, fast_pushes, monkeypatch
    ):
        """The first POST reaches localstripe and creates the customer, then the connection
        drops before the answer arrives. The worker retries the same change with the same
        Idempotency-Key; localstripe ignores the key (real Stripe would replay its answer),
        so the adapter finds the customer by its metadata.castiel_id marker."""
        url, client = localstripe
        integration = stripe_integration(tenant, url)
        make_task(integration, "customers")
        real_send = requests.Session.send
        sent: list[requests.PreparedRequest] = []

        def lose_first_answer(session, request, **kwargs):
            response = real_send(session, request, **kwargs)
            if request.method == "POST" and request.url.endswith("/v1/customers"):
                sent.append(request)
                if len(sent) == 1:
                    raise requests.ConnectionError("connection reset before the answer")
            return response

        monkeypatch.setattr(requests.Session, "send", lose_first_answer)
        change = local_changes.record_create(
            integration=integration, entity_type="customers", data={"email": "once@example.com"}
        ).change
        assert push_all(pushes) == {"retry": 1, "succeeded": 1}
        customers = client.v1.customers.list(params={"limit": 100}).data
        assert [c.email for c in customers] == ["once@example.com"]
        assert len(sent) == 1  # the retry found it; it did not create again
        assert sent[0].headers["Idempotency-Key"] == change.idempotency_key
        change.refresh_from_db()
        assert change.replayed and change.remote_id == customers[0].id

    def test_connection_against_localstripe(self, tenant, localstripe):
        url, _client = localstripe
        good = stripe_integration(tenant, url)
        result = integration_test_connection(integration=good)
        assert (result.ok, result.code) == (True, "ok"), result.message
        bad = make_integration(
            tenant,
            "stripe",
            {"api_base": url},
            credential=("api_key", {"api_key": "pk_test_not_a_secret_key"}, STRIPE_KEY[2]),
            name="Stripe wrong key",
        )
        result = integration_test_connection(integration=bad)
        assert (result.ok, result.code) == (False, "invalid_credentials"), result.message
        assert "pk_test_not_a_secret_key" not in result.message

    def test_signed_webhooks_from_localstripe_reach_the_record_store(
        self, tenant, localstripe, live_server, enqueued, no_push_rules
    ):
        url, client = localstripe
        integration = stripe_integration(tenant, url)
        task = make_task(integration, "customers")
        registration = make_registration(
            tenant, scheme="stripe", secret=WEBHOOK_SECRET, integration=integration
        )
        requests.post(
            f"{url}/_config/webhooks/castiel",
            json={
                "url": f"{live_server.url}/webhooks/{registration.pk}/",
                "secret": WEBHOOK_SECRET,
                "events": ["customer.created", "customer.updated", "customer.deleted"],
            },
            timeout=10,
        ).raise_for_status()
        customer = client.v1.customers.create(params={"email": "hook@example.com"})
        client.v1.customers.update(customer.id, params={"name": "Hooked"})
        accepted = WebhookEvent.objects.filter(registration=registration, outcome="accepted")
        live.wait_until(lambda: accepted.count() == 2, timeout=30, what="two Stripe webhooks")
        # localstripe posts both events at once, so they can arrive in either order (Stripe
        # does not promise an order either); a customer object carries no modification time
        # to tell which is newer, so they are processed in the order Stripe made them.
        order = {"customer.created": 0, "customer.updated": 1}
        for event in sorted(accepted.all(), key=lambda e: order[_event_type(e)]):
            assert processing.event_process(event_id=event.pk) == "processed"
        assert records_of(task)[customer.id]["name"] == "Hooked"

        client.v1.customers.delete(customer.id)
        live.wait_until(lambda: accepted.all().count() == 3, timeout=30, what="the deletion")
        [deleted] = [e for e in accepted.all() if _event_type(e) == "customer.deleted"]
        assert processing.event_process(event_id=deleted.pk) == "processed"
        assert customer.id not in records_of(task)
        assert not WebhookEvent.objects.filter(registration=registration, outcome="rejected")


def _event_type(event: WebhookEvent) -> str:
    import json

    return json.loads(bytes(event.body))["type"]
