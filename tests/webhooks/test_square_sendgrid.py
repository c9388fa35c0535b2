"""Square and SendGrid deliveries through the real receiver.

Square: the published SDK vector (tests/webhooks/test_schemes.py cites it) delivered to a
registration whose ``url`` option is the vector's notification URL, as it would be behind a
proxy. SendGrid: the receiver checks the signed timestamp against the current time, which a
published vector from 2020 cannot pass, so these deliveries are signed at test time with an
ECDSA P-256 key generated here (not a published constant); the published vector itself is
verified in tests/webhooks/test_schemes.py.
"""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ValidationError

from tests.webhooks.test_schemes import SQUARE_BODY, SQUARE_KEY, SQUARE_SIGNATURE, SQUARE_URL
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_a_square_delivery_verifies_against_the_registered_notification_url(client, make_reg):
    registration = make_reg(scheme="square", secret=SQUARE_KEY, scheme_config={"url": SQUARE_URL})

    def send(body=SQUARE_BODY):
        return client.post(
            f"/webhooks/{registration.pk}/",
            data=body,
            content_type="application/json",
            HTTP_X_SQUARE_HMACSHA256_SIGNATURE=SQUARE_SIGNATURE,
        )

    first, again = send(), send()
    forged = send(SQUARE_BODY.replace(b"MLEFBHHSJGVHD", b"MLEFBHHSJGVHE"))

    assert first.status_code == 200, first.content
    assert again.json()["status"] == "duplicate"
    event = WebhookEvent.objects.get(registration=registration, outcome="accepted")
    assert event.dedupe_key == "ac3ac95b-f97d-458c-a6e6-18981597e05f"
    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")


class SendGridSigner:
    """A P-256 key pair made for this test, signing as SendGrid does (timestamp + body)."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        self.verification_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": stamp,
        }


BATCH = b'[{"email":"ada@example.com","event":"delivered","sg_event_id":"ev-1"}]\r\n'


def test_a_sendgrid_batch_is_accepted_and_a_replay_or_forgery_is_not(client, make_reg):
    signer = SendGridSigner()
    registration = make_reg(scheme="sendgrid", secret=signer.verification_key)

    def send(body=BATCH, **headers):
        return client.post(
            f"/webhooks/{registration.pk}/", data=body, content_type="application/json", **headers
        )

    accepted = send(**signer.headers(BATCH))
    stale = send(**signer.headers(BATCH, int(time.time()) - 3600))
    forged = send(BATCH.replace(b"ada", b"eve"), **signer.headers(BATCH))
    other = SendGridSigner()
    wrong_key = send(**other.headers(BATCH))

    assert accepted.status_code == 200, accepted.content
    assert WebhookEvent.objects.get(registration=registration, outcome="accepted").body == BATCH
    assert stale.json()["code"] == "timestamp_outside_tolerance"
    assert forged.json()["code"] == "bad_signature"
    assert wrong_key.json()["code"] == "bad_signature"


def test_a_sendgrid_registration_needs_a_p256_verification_key(make_reg):
    with pytest.raises(ValidationError) as info:
        make_reg(scheme="sendgrid", secret="a shared secret")
    assert "secret" in info.value.message_dict
