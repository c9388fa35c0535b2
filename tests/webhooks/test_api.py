"""Tenant API: registrations (write-only secret, rotation) and the event audit (filter, replay)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import get_user_model

from credentials.models import StoredSecret
from tests.webhooks.factories import make_event, make_registration
from tests.webhooks.support import github_headers
from webhooks.models import WebhookEvent, WebhookRegistration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

REGISTRATIONS = "/api/v1/webhook-registrations/"
EVENTS = "/api/v1/webhook-events/"
SECRET = "very-secret-signing-value"


def create(api, **fields):
    data = {"name": "GitHub issues", "scheme": "github", "secret": SECRET, **fields}
    return api.post(REGISTRATIONS, data, format="json")


def deliver(client, registration_id, secret=SECRET, delivery=None):
    body = json.dumps({"action": "opened", "issue": {"id": 1}}).encode()
    headers = github_headers(secret, body, event="issues", delivery=delivery or uuid.uuid4().hex)
    return client.post(
        f"/webhooks/{registration_id}/", data=body, content_type="application/json", **headers
    )


def test_create_returns_the_url_and_never_the_secret(api, client):
    response = create(api)
    assert response.status_code == 201, response.content
    body = response.json()
    assert "secret" not in body and SECRET not in response.content.decode()
    assert body["has_secret"] is True
    assert body["url"] == f"http://testserver/webhooks/{body['id']}/"
    registration = WebhookRegistration.objects.get(pk=body["id"])
    stored = StoredSecret.objects.get(name=registration.secret_name)
    assert SECRET not in stored.ciphertext  # encrypted in the secret store
    assert SECRET not in json.dumps(api.get(REGISTRATIONS + f"{body['id']}/").json())
    assert deliver(client, body["id"]).status_code == 200


def test_validation_errors_are_field_errors(api):
    response = create(api, scheme="nope")
    assert response.status_code == 400
    assert "scheme" in response.json()["details"]
    response = create(api, scheme="generic_hmac", scheme_config={"algorithm": "md5"})
    assert response.status_code == 400
    assert "scheme_config" in response.json()["details"]
    response = create(api, dedupe_rule=["cookie:x"])
    assert "dedupe_rule" in response.json()["details"]
    response = create(api, scheme="standard_webhooks", secret="not base64 !")
    assert "secret" in response.json()["details"]
    assert create(api).status_code == 201
    assert "name" in create(api).json()["details"]


def test_secret_cannot_be_changed_by_update(api):
    registration_id = create(api).json()["id"]
    response = api.patch(REGISTRATIONS + f"{registration_id}/", {"secret": "x"}, format="json")
    assert response.status_code == 400
    assert "rotate-secret" in response.json()["details"]["secret"][0]
    response = api.patch(REGISTRATIONS + f"{registration_id}/", {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False


def test_integration_must_belong_to_the_tenant(api, other_tenant):
    from tests.factories import IntegrationFactory

    theirs = IntegrationFactory(tenant=other_tenant)
    response = create(api, integration=str(theirs.pk))
    assert response.status_code == 400
    assert "integration" in response.json()["details"]


def test_rotate_secret_action(api, client):
    registration_id = create(api).json()["id"]
    url = REGISTRATIONS + f"{registration_id}/rotate-secret/"
    response = api.post(url, {"secret": "the-new-one", "overlap_seconds": 600}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["previous_secret_expires_at"] is not None
    assert "the-new-one" not in response.content.decode()
    assert deliver(client, registration_id).status_code == 200
    assert deliver(client, registration_id, secret="the-new-one").status_code == 200
    response = api.post(url, {"secret": "third", "overlap_seconds": 0}, format="json")
    assert response.json()["previous_secret_expires_at"] is None
    assert deliver(client, registration_id, secret="the-new-one").status_code == 401
    assert api.post(url, {"overlap_seconds": -1}, format="json").status_code == 400


def test_delete_removes_the_secret(api, django_capture_on_commit_callbacks):
    registration_id = create(api).json()["id"]
    name = WebhookRegistration.objects.get(pk=registration_id).secret_name
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(REGISTRATIONS + f"{registration_id}/").status_code == 204
    assert not StoredSecret.objects.filter(name=name).exists()


def test_events_list_filter_detail(api, client, tenant):
    registration_id = create(api).json()["id"]
    assert deliver(client, registration_id, delivery="d1").status_code == 200
    assert deliver(client, registration_id, delivery="d1").status_code == 200
    assert deliver(client, registration_id, secret="forged").status_code == 401

    listing = api.get(EVENTS, {"registration": registration_id}).json()
    assert listing["count"] == 3
    assert "body" not in listing["results"][0]
    outcomes = sorted(row["outcome"] for row in listing["results"])
    assert outcomes == ["accepted", "duplicate", "rejected"]
    rejected = api.get(EVENTS, {"outcome": "rejected"}).json()["results"]
    assert [row["reason"] for row in rejected] == ["bad_signature"]
    assert api.get(EVENTS, {"dedupe_key": "d1", "outcome": "accepted"}).json()["count"] == 1

    accepted = api.get(EVENTS, {"outcome": "accepted"}).json()["results"][0]
    detail = api.get(EVENTS + f"{accepted['id']}/").json()
    assert json.loads(detail["body"]) == {"action": "opened", "issue": {"id": 1}}
    assert detail["body_encoding"] == "utf-8"
    assert detail["headers"]["X-Github-Event"] == "issues"
    assert detail["status"] == "received"


def test_replay_endpoint(api, tenant, recorded_actions, inline):
    registration = make_registration(tenant)
    event = make_event(
        registration,
        headers={"X-Github-Event": "issues"},
        body=json.dumps({"action": "opened", "issue": {"id": 3}}).encode(),
    )
    with inline():
        response = api.post(EVENTS + f"{event.pk}/replay/")
    assert response.status_code == 202, response.content
    assert response.json()["replay_count"] == 1
    event.refresh_from_db()
    assert event.status == "processed"
    assert [name for name, *_ in recorded_actions] == ["sync.upsert_record", "push.evaluate_rules"]

    rejected = make_event(registration, outcome="rejected", reason="bad_signature", status="")
    response = api.post(EVENTS + f"{rejected.pk}/replay/")
    assert response.status_code == 409
    assert response.json()["code"] == "replay_refused"


def test_binary_bodies_are_base64(api, tenant):
    event = make_event(make_registration(tenant), body=b"\xff\xfe\x00")
    detail = api.get(EVENTS + f"{event.pk}/").json()
    assert detail["body_encoding"] == "base64" and detail["body"] == "//4A"


def test_admin_pages_never_show_secrets(client, tenant):
    registration = make_registration(tenant, secret="admin-visible?")
    make_event(registration)
    graph = make_registration(tenant, scheme="msgraph", secret="graph-client-state")
    graph_event = make_event(graph, body=b'{"value": [{"clientState": "graph-client-state"}]}')
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-12345-long")
    client.force_login(user)
    pages = [
        "/admin/webhooks/webhookregistration/",
        f"/admin/webhooks/webhookregistration/{registration.pk}/change/",
        "/admin/webhooks/webhookevent/",
        f"/admin/webhooks/webhookevent/{graph_event.pk}/change/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "admin-visible?" not in html and "graph-client-state" not in html, page
    assert str(registration.pk) in client.get(pages[1]).content.decode()


def admin_form(tenant, **fields) -> dict:
    """The registration change form as the admin posts it."""
    return {
        "tenant": str(tenant.pk),
        "integration": "",
        "name": "from admin",
        "scheme": "github",
        "scheme_config": "{}",
        "parser": "",
        "parser_config": "{}",
        "timestamp_tolerance": "300",
        "dedupe_rule": "[]",
        "event_types": "[]",
        "routes": "{}",
        "rate_limit_per_minute": "",
        "is_active": "on",
        "new_secret": "",
        "overlap_seconds": "",
        **fields,
    }


def test_admin_rotates_the_secret(client, tenant):
    registration = make_registration(tenant, secret="first")
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-12345-long")
    client.force_login(user)
    page = f"/admin/webhooks/webhookregistration/{registration.pk}/change/"
    form = admin_form(tenant, name=registration.name, new_secret="second", overlap_seconds="60")
    response = client.post(page, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    registration.refresh_from_db()
    assert registration.previous_secret_version and registration.previous_secret_expires_at
    from webhooks import lookup, signing

    keys = signing.signing_keys(lookup.snapshot(registration))
    assert [(k.value, k.label) for k in keys] == [("second", "current"), ("first", "previous")]
    assert WebhookEvent.objects.count() == 0


def test_admin_generates_a_secret_shows_it_once_and_it_signs(client, tenant):
    import re

    registration = make_registration(tenant, secret="first")
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-12345-long")
    client.force_login(user)
    page = f"/admin/webhooks/webhookregistration/{registration.pk}/change/"
    form = admin_form(tenant, name=registration.name, generate_secret="on", overlap_seconds="600")
    response = client.post(page, form)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    generated = re.search(r'<code id="new-webhook-secret"[^>]*>([^<]+)</code>', html).group(1)
    assert len(generated) >= 40 and "previous secret is still accepted" in html
    # It is the current key now, the old one stays for the overlap; both sign deliveries.
    assert deliver(client, registration.pk, secret=generated).status_code == 200
    assert deliver(client, registration.pk, secret="first").status_code == 200
    # Shown once: the registration page never shows it again.
    assert generated not in client.get(page).content.decode()

    # Providers that issue their own secret cannot have one made up for them.
    stripe = make_registration(tenant, scheme="stripe", secret="whsec_x")
    refused = client.post(
        f"/admin/webhooks/webhookregistration/{stripe.pk}/change/",
        {**form, "name": stripe.name, "scheme": "stripe"},
    )
    assert refused.status_code == 200 and "issues its own signing secret" in (
        refused.content.decode()
    )
    both = client.post(page, {**form, "new_secret": "pasted-too"})
    assert "not both" in both.content.decode()

    # A new registration can start with a generated secret too.
    added = client.post(
        "/admin/webhooks/webhookregistration/add/",
        admin_form(tenant, name="generated from the start", generate_secret="on"),
    )
    first = re.search(r'<code id="new-webhook-secret"[^>]*>([^<]+)</code>', added.content.decode())
    fresh = WebhookRegistration.objects.get(name="generated from the start")
    assert first and deliver(client, fresh.pk, secret=first.group(1)).status_code == 200


def test_generic_hmac_secrets_come_in_the_configured_encoding():
    import base64

    from webhooks.schemes import get_scheme

    scheme = get_scheme("generic_hmac")
    assert len(base64.b64decode(scheme.generate_secret({"secret_encoding": "base64"}))) == 32
    assert len(bytes.fromhex(scheme.generate_secret({"secret_encoding": "hex"}))) == 32
    assert scheme.generate_secret({}) != scheme.generate_secret({})


def test_admin_adds_a_registration_with_its_secret(client, tenant):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-12345-long")
    client.force_login(user)
    form = admin_form(
        tenant, scheme="stripe", event_types='["customer.*"]', new_secret="whsec_from_admin"
    )
    response = client.post("/admin/webhooks/webhookregistration/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    registration = WebhookRegistration.objects.get(name="from admin")
    assert registration.secret_name == "webhook-" + registration.pk.hex
    from webhooks import lookup, signing

    keys = signing.signing_keys(lookup.snapshot(registration))
    assert [(k.value, k.label) for k in keys] == [("whsec_from_admin", "current")]
    bad = {**form, "name": "broken", "scheme_config": '{"colour": "red"}'}
    assert client.post("/admin/webhooks/webhookregistration/add/", bad).status_code == 200
    assert not WebhookRegistration.objects.filter(name="broken").exists()
