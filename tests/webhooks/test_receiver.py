"""The receiver through the real URL, middleware and database: every documented status."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from credentials.secrets import SecretStoreError
from tests.webhooks.support import github_headers, slack_headers, standard_headers, stripe_header
from webhooks import processing, registrations, signing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

SECRET = "s3cret-for-tests"
BODY = json.dumps({"action": "opened", "issue": {"id": 7, "title": "x"}}).encode()


def post(client, registration, body=BODY, *, path=None, content_type="application/json", **headers):
    path = path or f"/webhooks/{registration.pk}/"
    return client.post(path, data=body, content_type=content_type, **headers)


def gh(body=BODY, delivery=None, secret=SECRET, event="issues"):
    return github_headers(secret, body, event=event, delivery=delivery or str(uuid.uuid4()))


def events(registration, **filters):
    return WebhookEvent.objects.filter(registration=registration, **filters)


@pytest.fixture
def github(make_reg):
    return make_reg(scheme="github", secret=SECRET)


def test_signed_delivery_is_stored_verbatim_and_answered_200(client, github):
    delivery = str(uuid.uuid4())
    response = post(
        client, github, **gh(delivery=delivery), HTTP_AUTHORIZATION="Bearer leaked-token"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "accepted"
    event = WebhookEvent.objects.get(pk=body["event_id"])
    assert event.outcome == "accepted" and event.reason == "ok" and event.http_status == 200
    assert event.status == "received"  # queued, not processed in the request
    assert bytes(event.body) == BODY  # the raw bytes, never re-serialised
    assert event.dedupe_key == delivery
    assert event.matched_secret == "current"
    assert event.correlation_id == response["X-Correlation-ID"]
    assert event.headers["Authorization"] == "[redacted]"
    assert event.headers["X-Github-Event"] == "issues"
    assert event.receive_ms is not None


def test_the_accepted_answer_is_the_json_django_would_send(client, github):
    from django.http import JsonResponse

    response = post(client, github, **gh())
    expected = JsonResponse({"status": "accepted", "event_id": response.json()["event_id"]})
    assert response.content == expected.content
    assert response["Content-Type"] == expected["Content-Type"] == "application/json"


def test_accepted_deliveries_are_counted_and_timed_per_scheme(client, github):
    from webhooks import metrics

    def counts():
        return (
            metrics.DELIVERIES.labels("github", "accepted", "ok")._value.get(),
            metrics.RECEIVE_DURATION.labels("github")._sum.get() > 0,
            metrics.DELIVERIES.labels("github", "rejected", "bad_signature")._value.get(),
        )

    accepted, _, rejected = counts()
    for n in range(2):
        body = json.dumps({"action": "opened", "issue": {"id": n}}).encode()
        assert post(client, github, body, **gh(body)).json()["status"] == "accepted"
    assert post(client, github, **gh(secret="wrong")).status_code == 401
    assert counts() == (accepted + 2, True, rejected + 1)


def test_whitespace_in_json_is_kept_byte_for_byte(client, github):
    body = b'{ "action" :"opened",\n  "issue": {"id": 7}  }'
    response = post(client, github, body, **gh(body))
    assert response.status_code == 200
    assert bytes(WebhookEvent.objects.get(pk=response.json()["event_id"]).body) == body


def test_processing_is_queued_after_commit(client, github, inline, recorded_actions):
    with inline():
        response = post(client, github, **gh())
    assert response.status_code == 200
    event = WebhookEvent.objects.get(pk=response.json()["event_id"])
    assert event.status == "processed"
    assert [name for name, *_ in recorded_actions] == ["sync.upsert_record", "push.evaluate_rules"]


def test_unknown_registration_is_404_and_not_stored(client, github):
    response = client.post(f"/webhooks/{uuid.uuid4()}/", data=BODY, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert client.post("/webhooks/not-a-uuid/", data=BODY, content_type="x/y").status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_trailing_slash_is_optional_and_other_methods_are_405(client, github):
    assert post(client, github, path=f"/webhooks/{github.pk}", **gh()).status_code == 200
    response = client.get(f"/webhooks/{github.pk}/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_inactive_registration_is_410_and_audited(client, github):
    registrations.registration_update(registration=github, is_active=False)
    response = post(client, github, **gh())
    assert response.status_code == 410
    assert response.json()["code"] == "inactive"
    row = events(github).get()
    assert (row.outcome, row.reason, row.http_status, row.status) == (
        "rejected",
        "inactive",
        410,
        "",
    )


def test_inactive_tenant_is_410(client, github, tenant):
    assert post(client, github, **gh()).status_code == 200
    tenant.is_active = False
    tenant.save()
    assert post(client, github, **gh()).status_code == 410


@override_settings(CASTIEL_WEBHOOK_MAX_BODY_BYTES=64)
def test_body_over_the_limit_is_413_and_not_stored(client, github):
    body = b"{" + b" " * 100 + b"}"
    response = post(client, github, body, **gh(body))
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert not events(github).exists()
    small = b"{}"
    assert post(client, github, small, **gh(small)).status_code == 200


def test_missing_secret_fails_closed(client, make_reg):
    registration = make_reg(scheme="github", secret="")
    response = post(client, registration, **gh())
    assert response.status_code == 401
    assert response.json()["code"] == "missing_secret"
    assert events(registration).get().reason == "missing_secret"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda h: {**h, "HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64}, "bad_signature"),
        (
            lambda h: {k: v for k, v in h.items() if k != "HTTP_X_HUB_SIGNATURE_256"},
            "missing_signature",
        ),
        (lambda h: {**h, "HTTP_X_HUB_SIGNATURE_256": "md5=abc"}, "malformed_signature"),
    ],
)
def test_bad_signatures_are_401_with_reason_audited_not_processed(
    client, github, inline, recorded_actions, mangle, reason
):
    with inline():
        response = post(client, github, **mangle(gh()))
    assert response.status_code == 401
    assert response.json()["code"] == reason
    row = events(github).get()
    assert (row.outcome, row.reason, row.status) == ("rejected", reason, "")
    assert bytes(row.body) == BODY
    assert recorded_actions == []


def test_tampered_body_and_wrong_secret_are_401(client, github):
    headers = gh()
    assert post(client, github, BODY + b" ", **headers).json()["code"] == "bad_signature"
    assert post(client, github, **gh(secret="wrong")).json()["code"] == "bad_signature"


def test_stripe_timestamp_outside_tolerance_is_401(client, make_reg):
    secret = "whsec_" + "a" * 32
    registration = make_reg(scheme="stripe", secret=secret, timestamp_tolerance=300)
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()
    old = stripe_header(secret, body, int(time.time()) - 301)
    response = post(client, registration, body, HTTP_STRIPE_SIGNATURE=old)
    assert response.status_code == 401
    assert response.json()["code"] == "timestamp_outside_tolerance"
    fresh = stripe_header(secret, body)
    assert post(client, registration, body, HTTP_STRIPE_SIGNATURE=fresh).status_code == 200


def test_duplicate_is_stored_once_processed_once(client, github, inline, recorded_actions):
    headers = gh(delivery="delivery-1")
    with inline():
        first = post(client, github, **headers)
    with inline():
        second = post(client, github, **headers)
    assert first.status_code == 200 and second.status_code == 200
    assert second.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    assert events(github, outcome="accepted").count() == 1
    duplicate = events(github, outcome="duplicate").get()
    assert str(duplicate.duplicate_of_id) == first.json()["event_id"]
    assert duplicate.status == ""
    assert len(recorded_actions) == 2  # upsert + rules, once


def test_dedupe_on_a_body_path_and_composite_rules(client, make_reg):
    registration = make_reg(
        scheme="github", secret=SECRET, dedupe_rule=["header:X-GitHub-Event", "body:issue.id"]
    )
    one = post(client, registration, **gh(delivery="a"))
    two = post(client, registration, **gh(delivery="b"))  # new delivery id, same issue id
    assert one.json()["status"] == "accepted" and two.json()["status"] == "duplicate"
    assert events(registration, outcome="accepted").get().dedupe_key == "issues|7"


@override_settings(CASTIEL_WEBHOOK_RATE_LIMIT_PER_MINUTE=0)
def test_rate_limit_is_429_with_retry_after_but_duplicates_still_200(client, make_reg):
    registration = make_reg(scheme="github", secret=SECRET, rate_limit_per_minute=2)
    first_headers = gh(delivery="first")
    assert post(client, registration, **first_headers).status_code == 200
    second = BODY + b" "  # another body: the same one again would be a replay
    assert post(client, registration, second, **gh(second)).status_code == 200
    third = BODY + b"  "
    limited = post(client, registration, third, **gh(third))
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert post(client, registration, **first_headers).json()["status"] == "duplicate"
    assert events(registration, outcome="accepted").count() == 2
    assert events(registration, reason="rate_limited").count() == 1


def test_storage_unavailable_is_503_never_2xx(client, github):
    with mock.patch("webhooks.receipt.insert_event", side_effect=OperationalError("server closed")):
        response = post(client, github, **gh())
    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert response["Retry-After"]
    assert not events(github).exists()


def test_lookup_failure_is_503(client, github):
    with mock.patch("webhooks.lookup.get_registration", side_effect=OperationalError("down")):
        assert post(client, github, **gh()).status_code == 503


def test_secret_store_failure_is_503(client, make_reg):
    registration = make_reg(scheme="github", secret="never-cached-" + uuid.uuid4().hex)
    signing.clear_cache()
    with mock.patch("webhooks.signing.secret_store") as store:
        store.return_value.get.side_effect = SecretStoreError("vault unreachable")
        response = post(client, registration, **gh())
    assert response.status_code == 503


def test_broker_failure_after_commit_still_answers_200(client, github):
    with mock.patch("webhooks.receipt.enqueue", side_effect=ConnectionError("redis down")):
        response = post(client, github, **gh())
    assert response.status_code == 200
    event = WebhookEvent.objects.get(pk=response.json()["event_id"])
    assert event.status == "received"
    # The sweeper finds the stored event once its wake-up is overdue.
    WebhookEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    with mock.patch("webhooks.receipt.enqueue") as enqueue:
        assert processing.events_requeue_due() == 1
    enqueue.assert_called_once_with(
        "webhooks.tasks.process_event", str(event.pk), kind="webhooks", coalesce=False
    )


def test_secret_rotation_overlap(client, github):
    old_headers = gh()
    registrations.registration_rotate_secret(
        registration=github, secret="new-secret", overlap_seconds=3600
    )
    assert post(client, github, **old_headers).status_code == 200
    body = BODY + b" "  # another body: the same one again would be a replay
    new = post(client, github, body, **gh(body, secret="new-secret"))
    assert new.status_code == 200
    assert WebhookEvent.objects.get(pk=new.json()["event_id"]).matched_secret == "current"
    previous = events(github, outcome="accepted").exclude(pk=new.json()["event_id"]).get()
    assert previous.matched_secret == "previous"

    # After the overlap only the new secret works.
    github.refresh_from_db()
    registrations.registration_update(registration=github)  # (no-op save; cache invalidated)
    type(github).objects.filter(pk=github.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    registrations.invalidate_registration(github.pk)
    body = BODY + b"  "
    assert post(client, github, body, **gh(body)).json()["code"] == "bad_signature"
    assert post(client, github, body, **gh(body, secret="new-secret")).status_code == 200


def test_rotation_without_overlap_revokes_the_old_secret_at_once(client, github):
    assert post(client, github, **gh()).status_code == 200  # cached lookup + secret
    registrations.registration_rotate_secret(registration=github, secret="fresh", overlap_seconds=0)
    assert post(client, github, **gh()).status_code == 401
    assert post(client, github, **gh(secret="fresh")).status_code == 200


def test_registration_cache_is_invalidated_on_change(client, github):
    assert post(client, github, **gh()).status_code == 200
    registrations.registration_update(registration=github, is_active=False)
    assert post(client, github, **gh()).status_code == 410
    registrations.registration_update(registration=github, is_active=True)
    assert post(client, github, **gh()).status_code == 200


def test_cache_outage_falls_back_to_the_database(client, github):
    with mock.patch("webhooks.lookup.cache") as cache:
        cache.get.side_effect = ConnectionError("cache down")
        cache.set.side_effect = ConnectionError("cache down")
        assert post(client, github, **gh()).status_code == 200


@override_settings(CASTIEL_WEBHOOK_NOISE_AUDIT_PER_MINUTE=2)
def test_rejections_are_audited_up_to_a_bound(client, github):
    for _ in range(5):
        assert post(client, github, **gh(secret="forged")).status_code == 401
    assert events(github, outcome="rejected").count() == 2


def test_slack_url_verification_handshake(client, make_reg, inline, recorded_actions):
    registration = make_reg(scheme="slack", secret="slack-signing-secret")
    body = json.dumps(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd", "type": "url_verification"}
    ).encode()
    with inline():
        response = post(client, registration, body, **slack_headers("slack-signing-secret", body))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd"}
    row = events(registration).get()
    assert (row.outcome, row.status) == ("handshake", "")
    assert recorded_actions == []
    unsigned = post(client, registration, body)
    assert unsigned.status_code == 401


def test_graph_validation_token_and_notifications(client, make_reg):
    registration = make_reg(scheme="msgraph", secret="secretClientValue")
    validation = client.post(
        f"/webhooks/{registration.pk}/?validationToken=Validation%3A%20Testing",
        data=b"",
        content_type="text/plain",
    )
    assert validation.status_code == 200
    assert validation.content == b"Validation: Testing"
    assert validation["Content-Type"].startswith("text/plain")
    body = json.dumps(
        {
            "value": [
                {
                    "subscriptionId": "s",
                    "clientState": "secretClientValue",
                    "changeType": "updated",
                    "resource": "users/1",
                }
            ]
        }
    ).encode()
    assert post(client, registration, body).status_code == 202
    forged = body.replace(b"secretClientValue", b"guess")
    assert post(client, registration, forged).status_code == 401


def test_standard_webhooks_dedupe_on_message_id(client, make_reg):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    registration = make_reg(scheme="standard_webhooks", secret=secret)
    body = b'{"type": "invoice.paid"}'
    first = post(client, registration, body, **standard_headers(secret, body, "msg_1"))
    again = post(client, registration, body, **standard_headers(secret, body, "msg_1"))
    assert first.json()["status"] == "accepted" and again.json()["status"] == "duplicate"
    assert events(registration, outcome="accepted").get().dedupe_key == "msg_1"


def test_form_encoded_twilio_delivery(client, make_reg, settings):
    from webhooks.schemes.twilio import compute_signature

    registration = make_reg(scheme="twilio", secret="12345")
    body = b"CallSid=CA1&From=%2B14158675309&Digits=1234"
    url = f"http://testserver/webhooks/{registration.pk}/?foo=1"
    params = [("CallSid", "CA1"), ("From", "+14158675309"), ("Digits", "1234")]
    signature = compute_signature("12345", url, params)
    response = client.post(
        f"/webhooks/{registration.pk}/?foo=1",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 200, response.content
    # Behind a proxy the public URL differs: configured base URL wins.
    settings.CASTIEL_WEBHOOK_PUBLIC_BASE_URL = "https://hooks.example.com"
    response = client.post(
        f"/webhooks/{registration.pk}/?foo=1",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    assert response.status_code == 401
    public = f"https://hooks.example.com/webhooks/{registration.pk}/?foo=1"
    response = client.post(
        f"/webhooks/{registration.pk}/?foo=1",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=compute_signature("12345", public, params),
        HTTP_I_TWILIO_IDEMPOTENCY_TOKEN="idem-1",
    )
    assert response.status_code == 200
    assert events(registration, dedupe_key="idem-1").exists()


def test_rejected_bodies_are_kept_only_in_part(client, github):
    body = b'{"x": "' + b"a" * 100_000 + b'"}'
    assert post(client, github, body, **gh(body, secret="forged")).status_code == 401
    row = events(github).get()
    assert row.body_size == len(body) and len(bytes(row.body)) == 64 * 1024
