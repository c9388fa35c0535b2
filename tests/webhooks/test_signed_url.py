"""Schemes that sign the URL verify the URL the provider called.

The registration's ``url`` option (or ``CASTIEL_WEBHOOK_PUBLIC_BASE_URL``) names the public
scheme, host and path — what a proxy in front of Castiel changes. The query string is always
the request's: the provider signs the query it sent (Twilio appends ``bodySHA256=`` to JSON
deliveries), and a delivery whose query was changed on the way must not verify.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from webhooks.models import WebhookEvent
from webhooks.schemes.twilio import compute_signature

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

TOKEN = "12345"
FORM = "application/x-www-form-urlencoded"
FORM_BODY = b"CallSid=CA1&From=%2B14158675309&Digits=1234"
FORM_PARAMS = [("CallSid", "CA1"), ("From", "+14158675309"), ("Digits", "1234")]
PUBLIC = "https://hooks.example.com/twilio/inbound"


def twilio(make_reg, url: str):
    return make_reg(scheme="twilio", secret=TOKEN, scheme_config={"url": url})


def post(client, registration, body: bytes, query: str, signature: str, content_type: str):
    return client.post(
        f"/webhooks/{registration.pk}/?{query}",
        data=body,
        content_type=content_type,
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def test_a_twilio_json_delivery_to_a_url_with_a_query_verifies(client, make_reg):
    """Twilio signs the URL it called, bodySHA256 included, after the registered query."""
    registration = twilio(make_reg, f"{PUBLIC}?account=acme")
    body = json.dumps({"MessageSid": "SM1", "Body": "hi"}).encode()
    query = f"account=acme&bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = compute_signature(TOKEN, f"{PUBLIC}?{query}", [])

    response = post(client, registration, body, query, signature, "application/json")

    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.filter(registration=registration, outcome="accepted").exists()


def test_a_delivery_whose_query_was_changed_does_not_verify(client, make_reg):
    registration = twilio(make_reg, f"{PUBLIC}?account=acme")
    signature = compute_signature(TOKEN, f"{PUBLIC}?account=acme", FORM_PARAMS)

    genuine = post(client, registration, FORM_BODY, "account=acme", signature, FORM)
    changed = post(client, registration, FORM_BODY, "account=evil", signature, FORM)

    assert genuine.status_code == 200, genuine.content
    assert (changed.status_code, changed.json()["code"]) == (401, "bad_signature")


def test_the_configured_url_replaces_scheme_host_and_path_only(client, make_reg):
    """Behind a proxy the request arrives on another host and path; the query is its own."""
    registration = twilio(make_reg, PUBLIC)
    signature = compute_signature(TOKEN, f"{PUBLIC}?foo=1", FORM_PARAMS)

    assert post(client, registration, FORM_BODY, "foo=1", signature, FORM).status_code == 200
    assert post(client, registration, FORM_BODY, "foo=2", signature, FORM).status_code == 401


def test_generic_hmac_signs_the_configured_url(client, make_reg):
    """generic_hmac's {url} is the registration's configured URL (with the request's query)."""
    import hmac

    config = {"header": "X-Sig", "template": "{url}{body}", "url": PUBLIC}
    registration = make_reg(scheme="generic_hmac", secret="k3y", scheme_config=config)
    body = b'{"id": 1}'
    signed = f"{PUBLIC}?n=1".encode() + body
    signature = hmac.new(b"k3y", signed, hashlib.sha256).hexdigest()

    response = client.post(
        f"/webhooks/{registration.pk}/?n=1",
        data=body,
        content_type="application/json",
        HTTP_X_SIG=signature,
    )

    assert response.status_code == 200, response.content
