"""Real Stripe-signed webhooks: localstripe → a live Castiel (gunicorn) → a real qcluster."""

from __future__ import annotations

import pytest
import requests
import stripe

from tests.webhooks import live
from tests.webhooks.factories import make_registration
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_castiel_live_test_secret"


def test_localstripe_webhooks_are_accepted_and_processed(tenant, spawn):
    registration = make_registration(tenant, scheme="stripe", secret=SECRET)
    stripe_url = live.start_localstripe(spawn)
    castiel_url, _web = live.start_castiel(spawn)
    live.start_worker(spawn)

    response = requests.post(
        f"{stripe_url}/_config/webhooks/castiel",
        json={
            "url": f"{castiel_url}/webhooks/{registration.pk}/",
            "secret": SECRET,
            "events": ["customer.created", "customer.updated", "customer.deleted"],
        },
        timeout=10,
    )
    assert response.status_code == 200

    client = stripe.StripeClient("sk_test_castiel", base_addresses={"api": stripe_url})
    customer = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada"})
    client.v1.customers.update(customer.id, params={"email": "ada@lovelace.example"})
    client.v1.customers.delete(customer.id)

    accepted = WebhookEvent.objects.filter(registration=registration, outcome="accepted")
    live.wait_until(
        lambda: accepted.filter(status__in=["processed", "failed"]).count() == 3,
        timeout=90,
        what="three Stripe events processed",
    )
    events = {e.event_type: e for e in accepted}
    assert set(events) == {"customer.created", "customer.updated", "customer.deleted"}
    for event in events.values():
        assert event.status == "processed", event.last_error
        assert event.matched_secret == "current"
        assert event.external_id == customer.id and event.entity_type == "customers"
        assert event.dedupe_key.startswith("evt_")
        assert event.headers["Stripe-Signature"].startswith("t=")
    updated = events["customer.updated"].actions
    assert [a["action"] for a in updated] == ["sync.upsert_record", "push.evaluate_rules"]
    assert updated[0]["result"]["email"] == "ada@lovelace.example"
    assert events["customer.deleted"].actions[0]["action"] == "sync.delete_record"
    assert not WebhookEvent.objects.filter(registration=registration, outcome="rejected").exists()
