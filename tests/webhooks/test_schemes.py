"""Every scheme against the examples its provider publishes (docs or official SDK tests).

Published vectors are kept verbatim with their source beside them; everything else is signed
at test time by helpers independent of the scheme code (tests/webhooks/support.py) or by the
provider's own SDK. Each scheme also meets the same four failures: tampered body, wrong
secret, missing header and (where signed) a timestamp outside the tolerance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import stripe
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from webhooks.schemes import SCHEMES, Incoming, SigningKey, VerificationFailed, get_scheme

pytestmark = pytest.mark.embedded


def incoming(headers: dict, body: bytes, *, method="POST", url="", query="") -> Incoming:
    return Incoming(
        method=method,
        path="/webhooks/x/",
        query_string=query,
        headers=headers,
        body=body,
        url_resolver=lambda: url,
    )


def verify(slug, request, secrets, *, config=None, tolerance=300, now=None):
    keys = [SigningKey(s, "current" if i == 0 else "previous") for i, s in enumerate(secrets)]
    return get_scheme(slug).verify(
        request, keys, config=config or {}, tolerance=tolerance, now=now or time.time()
    )


def rejected(slug, request, secrets, **kwargs) -> str:
    with pytest.raises(VerificationFailed) as info:
        verify(slug, request, secrets, **kwargs)
    return info.value.reason


# ---------------------------------------------------------------------------------------------
# GitHub
# Source: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
# ("Testing the webhook payload validation").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_documented_example():
    request = incoming({"X-Hub-Signature-256": GITHUB_SIGNATURE}, GITHUB_BODY)
    assert verify("github", request, [GITHUB_SECRET]).key_label == "current"


def test_github_failures():
    good = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    assert rejected("github", incoming(good, b"Hello, World?"), [GITHUB_SECRET]) == "bad_signature"
    assert rejected("github", incoming(good, GITHUB_BODY), ["another secret"]) == "bad_signature"
    assert rejected("github", incoming({}, GITHUB_BODY), [GITHUB_SECRET]) == "missing_signature"
    bare = {"X-Hub-Signature-256": GITHUB_SIGNATURE.removeprefix("sha256=")}
    assert rejected("github", incoming(bare, GITHUB_BODY), [GITHUB_SECRET]) == (
        "malformed_signature"
    )


def test_github_legacy_sha1_only_when_allowed():
    # GitHub publishes no SHA-1 vector; computed with Python's hmac from the same inputs.
    digest = hmac.new(GITHUB_SECRET.encode(), GITHUB_BODY, hashlib.sha1).hexdigest()
    request = incoming({"X-Hub-Signature": f"sha1={digest}"}, GITHUB_BODY)
    assert rejected("github", request, [GITHUB_SECRET]) == "missing_signature"
    assert verify("github", request, [GITHUB_SECRET], config={"allow_sha1": True})
    tampered = incoming({"X-Hub-Signature": f"sha1={digest}"}, b"Hello")
    assert rejected("github", tampered, [GITHUB_SECRET], config={"allow_sha1": True}) == (
        "bad_signature"
    )


# ---------------------------------------------------------------------------------------------
# Stripe
# Source: stripe-python tests/test_webhook.py (DUMMY_WEBHOOK_PAYLOAD, DUMMY_WEBHOOK_SECRET);
# https://github.com/stripe/stripe-python/blob/master/tests/test_webhook.py — Stripe publishes
# no fixed header, so the header is made by the official SDK (stripe 16.1) at test time.
STRIPE_PAYLOAD = """{
  "id": "evt_test_webhook",
  "object": "event",
  "data": { "object": { "id": "rdr_123", "object": "terminal.reader" } }
}"""
STRIPE_SECRET = "whsec_test_secret"


def test_stripe_header_made_by_the_official_sdk():
    header = stripe.WebhookSignature.generate_signature_header(STRIPE_PAYLOAD, STRIPE_SECRET)
    request = incoming({"Stripe-Signature": header}, STRIPE_PAYLOAD.encode())
    assert verify("stripe", request, [STRIPE_SECRET])


def test_stripe_several_v1_and_other_schemes():
    # stripe-python test_header_contains_valid_signature: an extra bad v1 does not matter.
    header = stripe.WebhookSignature.generate_signature_header(STRIPE_PAYLOAD, STRIPE_SECRET)
    header = "v1=bad_signature," + header + ",v0=6ffbb59b2300aae63f27,v1=bad_signature"
    request = incoming({"Stripe-Signature": header}, STRIPE_PAYLOAD.encode())
    assert verify("stripe", request, [STRIPE_SECRET])


def test_stripe_failures():
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(STRIPE_PAYLOAD, STRIPE_SECRET, now)
    body = STRIPE_PAYLOAD.encode()
    good = {"Stripe-Signature": header}
    assert rejected("stripe", incoming(good, body + b" "), [STRIPE_SECRET]) == "bad_signature"
    assert rejected("stripe", incoming(good, body), ["whsec_other"]) == "bad_signature"
    assert rejected("stripe", incoming({}, body), [STRIPE_SECRET]) == "missing_signature"
    # stripe-python test_raise_on_malformed_header and
    # test_raise_on_no_signatures_with_expected_scheme
    assert (
        rejected(
            "stripe",
            incoming({"Stripe-Signature": "i'm not even a real signature header"}, body),
            [STRIPE_SECRET],
        )
        == "malformed_signature"
    )
    v0_only = header.replace("v1=", "v0=")
    assert rejected("stripe", incoming({"Stripe-Signature": v0_only}, body), [STRIPE_SECRET]) == (
        "malformed_signature"
    )
    # stripe-python test_raise_on_timestamp_outside_tolerance: 15 s old, tolerance 10 s.
    old = stripe.WebhookSignature.generate_signature_header(STRIPE_PAYLOAD, STRIPE_SECRET, now - 15)
    assert (
        rejected("stripe", incoming({"Stripe-Signature": old}, body), [STRIPE_SECRET], tolerance=10)
        == "timestamp_outside_tolerance"
    )


def test_stripe_sdk_accepts_what_we_accept():
    from tests.webhooks.support import stripe_header

    header = stripe_header(STRIPE_SECRET, STRIPE_PAYLOAD.encode())
    assert stripe.WebhookSignature.verify_header(STRIPE_PAYLOAD, header, STRIPE_SECRET, 300)
    assert verify(
        "stripe", incoming({"Stripe-Signature": header}, STRIPE_PAYLOAD.encode()), [STRIPE_SECRET]
    )


# ---------------------------------------------------------------------------------------------
# Slack
# Source: https://api.slack.com/authentication/verifying-requests-from-slack (worked example).
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    b"85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c4"
    b"47fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_HEADERS = {"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": SLACK_TIMESTAMP}
SLACK_NOW = 1531420618 + 30


def test_slack_documented_example():
    assert verify("slack", incoming(SLACK_HEADERS, SLACK_BODY), [SLACK_SECRET], now=SLACK_NOW)


def test_slack_failures():
    def reason(headers, body=SLACK_BODY, secret=SLACK_SECRET, now=SLACK_NOW):
        return rejected("slack", incoming(headers, body), [secret], now=now)

    assert reason(SLACK_HEADERS, body=SLACK_BODY + b"&x=1") == "bad_signature"
    assert reason(SLACK_HEADERS, secret="8f742231b10e8888abcd99yyyzzz85a6") == "bad_signature"
    assert reason({"X-Slack-Request-Timestamp": SLACK_TIMESTAMP}) == "missing_signature"
    assert reason({"X-Slack-Signature": SLACK_SIGNATURE}) == "missing_timestamp"
    assert reason(SLACK_HEADERS, now=1531420618 + 301) == "timestamp_outside_tolerance"


# ---------------------------------------------------------------------------------------------
# Shopify
# Source: Shopify/shopify-api-js packages/shopify-api/lib/webhooks/__tests__/validate.test.ts
# ("returns true for valid request": rawBody '{"foo": "bar"}', hmac below) with the test
# config's apiSecretKey 'test_secret_key' (lib/__tests__/test-config.ts).
SHOPIFY_SECRET = "test_secret_key"
SHOPIFY_BODY = b'{"foo": "bar"}'
SHOPIFY_HMAC = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="


def test_shopify_sdk_example():
    request = incoming({"X-Shopify-Hmac-SHA256": SHOPIFY_HMAC}, SHOPIFY_BODY)
    assert verify("shopify", request, [SHOPIFY_SECRET])
    # shopify-api-ruby signs with Base64.encode64, which appends a newline: same digest.
    request = incoming({"X-Shopify-Hmac-SHA256": SHOPIFY_HMAC + "\n"}, SHOPIFY_BODY)
    assert verify("shopify", request, [SHOPIFY_SECRET])


def test_shopify_failures():
    good = {"X-Shopify-Hmac-SHA256": SHOPIFY_HMAC}
    assert rejected("shopify", incoming(good, b'{"foo": "baz"}'), [SHOPIFY_SECRET]) == (
        "bad_signature"
    )
    assert rejected("shopify", incoming(good, SHOPIFY_BODY), ["other"]) == "bad_signature"
    assert rejected("shopify", incoming({}, SHOPIFY_BODY), [SHOPIFY_SECRET]) == "missing_signature"
    # shopify-api-ruby test_process_hmac_validation_fails: "invalid" is not an HMAC
    invalid = incoming({"X-Shopify-Hmac-SHA256": "invalid"}, SHOPIFY_BODY)
    assert rejected("shopify", invalid, [SHOPIFY_SECRET]) == "bad_signature"


# ---------------------------------------------------------------------------------------------
# Standard Webhooks / Svix, HMAC v1
# Source: svix/svix-webhooks python/tests/test_webhooks.py (test_sign_function and
# test_multi_sig_payload_is_valid); the same vector is in standard-webhooks' libraries.
SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SVIX_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SVIX_TIMESTAMP = "1614265330"
SVIX_BODY = b'{"test": 2432232314}'
SVIX_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SVIX_NOW = 1614265330 + 10


def svix_headers(signature=SVIX_SIGNATURE, prefix="webhook"):
    return {
        f"{prefix}-id": SVIX_ID,
        f"{prefix}-timestamp": SVIX_TIMESTAMP,
        f"{prefix}-signature": signature,
    }


def test_standard_webhooks_sdk_example_both_header_names_and_key_forms():
    for prefix in ("webhook", "svix"):
        request = incoming(svix_headers(prefix=prefix), SVIX_BODY)
        assert verify("standard_webhooks", request, [SVIX_SECRET], now=SVIX_NOW)
        # test_signature_verification_with_and_without_prefix
        bare = SVIX_SECRET.removeprefix("whsec_")
        assert verify("standard_webhooks", request, [bare], now=SVIX_NOW)


def test_standard_webhooks_several_signatures():
    # svix test_multi_sig_payload_is_valid
    sigs = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            SVIX_SIGNATURE,
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        ]
    )
    assert verify(
        "standard_webhooks", incoming(svix_headers(sigs), SVIX_BODY), [SVIX_SECRET], now=SVIX_NOW
    )


def test_standard_webhooks_failures():
    def reason(headers, body=SVIX_BODY, secret=SVIX_SECRET, now=SVIX_NOW):
        return rejected("standard_webhooks", incoming(headers, body), [secret], now=now)

    assert reason(svix_headers(), body=b'{"test": 2432232315}') == "bad_signature"
    # svix test_invalid_signature_raises_error
    assert reason(svix_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")) == (
        "bad_signature"
    )
    assert reason(svix_headers(), secret="whsec_" + base64.b64encode(b"x" * 24).decode()) == (
        "bad_signature"
    )
    headers = svix_headers()
    del headers["webhook-signature"]
    assert reason(headers) == "missing_signature"
    headers = svix_headers()
    del headers["webhook-id"]
    assert reason(headers) == "missing_header"
    headers = svix_headers()
    headers["webhook-timestamp"] = "hello"  # svix test_invalid_timestamp_raises_error
    assert reason(headers) == "malformed_timestamp"
    # svix test_old_timestamp_fails / test_new_timestamp_fails (tolerance 5 minutes)
    assert reason(svix_headers(), now=1614265330 + 301) == "timestamp_outside_tolerance"
    assert reason(svix_headers(), now=1614265330 - 301) == "timestamp_outside_tolerance"


# ---------------------------------------------------------------------------------------------
# Standard Webhooks, Ed25519 v1a
# Source: standard-webhooks/standard-webhooks libraries/go/webhook_asymmetric_test.go
# (TestAsymmetricWebhookSign: key seed, message, expected signature below).
ED25519_SEED = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
ED25519_SIGNATURE = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)


def ed25519_public_key(seed_b64: str) -> str:
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whpk_" + base64.b64encode(raw).decode()


def test_standard_webhooks_ed25519_sdk_example():
    public = ed25519_public_key(ED25519_SEED)
    assert get_scheme("standard_webhooks").validate_secret(public) is None
    request = incoming(svix_headers(ED25519_SIGNATURE), SVIX_BODY)
    assert verify("standard_webhooks", request, [public], now=SVIX_NOW)
    # mixed list: an HMAC entry for another key and the Ed25519 one
    mixed = incoming(svix_headers(SVIX_SIGNATURE + " " + ED25519_SIGNATURE), SVIX_BODY)
    assert verify("standard_webhooks", mixed, [public], now=SVIX_NOW)


def test_standard_webhooks_ed25519_failures():
    public = ed25519_public_key(ED25519_SEED)
    other = ed25519_public_key(base64.b64encode(b"A" * 32).decode())

    def reason(headers, body=SVIX_BODY, key=public, now=SVIX_NOW):
        return rejected("standard_webhooks", incoming(headers, body), [key], now=now)

    assert reason(svix_headers(ED25519_SIGNATURE), body=SVIX_BODY + b" ") == "bad_signature"
    assert reason(svix_headers(ED25519_SIGNATURE), key=other) == "bad_signature"
    # go test "invalid signature is invalid" and "partial signature is invalid"
    assert reason(svix_headers("v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")) == (
        "bad_signature"
    )
    assert reason(svix_headers("v1a,")) == "bad_signature"
    assert reason(svix_headers(ED25519_SIGNATURE), now=1614265330 + 301) == (
        "timestamp_outside_tolerance"
    )
    # an HMAC signature never verifies against a public key (and the reverse)
    assert reason(svix_headers(SVIX_SIGNATURE)) == "bad_signature"


# ---------------------------------------------------------------------------------------------
# Twilio
# Source: twilio/twilio-python tests/unit/test_request_validator.py.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
TWILIO_FORM = "&".join(f"{k}={v}" for k, v in TWILIO_PARAMS.items()).replace("+", "%2B").encode()
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def twilio(signature, url=TWILIO_URL, body=TWILIO_FORM, headers=FORM):
    return incoming(
        {**headers, "X-Twilio-Signature": signature},
        body,
        url=url,
        query=url.partition("?")[2],
    )


def test_twilio_sdk_examples():
    assert verify("twilio", twilio("RSOYDt4T1cUTdK1PDd93/VVr8B8="), [TWILIO_TOKEN])
    # test_validation_removes_port_on_https
    with_port = TWILIO_URL.replace(".com", ".com:1234")
    assert verify("twilio", twilio("RSOYDt4T1cUTdK1PDd93/VVr8B8=", url=with_port), [TWILIO_TOKEN])
    # test_validation_adds_port_on_https (hash of the URI with :443)
    assert verify("twilio", twilio("kvajT1Ptam85bY51eRf/AJRuM3w="), [TWILIO_TOKEN])
    # test_validation_adds_port_on_http (hash of the http URI with :80)
    http = TWILIO_URL.replace("https", "http")
    assert verify("twilio", twilio("0ZXoZLH/DfblKGATFgpif+LLRf4=", url=http), [TWILIO_TOKEN])


def test_twilio_duplicate_parameters():
    # test_compute_signature_duplicate_query_dict
    body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
    assert verify("twilio", twilio("IK+Dwps556ElfBT0I3Rgjkr1wJU=", body=body), [TWILIO_TOKEN])


def test_twilio_json_body_with_body_sha256():
    # test_validation_of_body_succeeds
    body = b'{"property": "value", "boolean": true}'
    body_hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    url = TWILIO_URL + "&bodySHA256=" + body_hash
    request = twilio(
        "a9nBmqA0ju/hNViExpshrM61xv4=",
        url=url,
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert verify("twilio", request, [TWILIO_TOKEN])
    tampered = twilio(
        "a9nBmqA0ju/hNViExpshrM61xv4=",
        url=url,
        body=body + b" ",
        headers={"Content-Type": "application/json"},
    )
    assert rejected("twilio", tampered, [TWILIO_TOKEN]) == "bad_body_hash"


def test_twilio_failures():
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert rejected("twilio", twilio(good, body=TWILIO_FORM + b"&x=1"), [TWILIO_TOKEN]) == (
        "bad_signature"
    )
    assert rejected("twilio", twilio(good), ["54321"]) == "bad_signature"
    assert rejected("twilio", twilio(good, url=TWILIO_URL + "&baz=3"), [TWILIO_TOKEN]) == (
        "bad_signature"
    )
    missing = incoming(FORM, TWILIO_FORM, url=TWILIO_URL)
    assert rejected("twilio", missing, [TWILIO_TOKEN]) == "missing_signature"


# ---------------------------------------------------------------------------------------------
# HubSpot v3
# Source: HubSpot/hubspot-api-python tests/spec/utils/test_signature.py (test_get_signature__v3).
HUBSPOT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
HUBSPOT_BODY = b"{'example_field':'example_value'}"
HUBSPOT_URL = "https://www.example.com/webhook_uri"
HUBSPOT_TIMESTAMP = "15000000"  # milliseconds
HUBSPOT_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
HUBSPOT_NOW = 15000000 / 1000 + 60


def hubspot(signature=HUBSPOT_SIGNATURE, body=HUBSPOT_BODY, timestamp=HUBSPOT_TIMESTAMP):
    headers = {"X-HubSpot-Signature-v3": signature}
    if timestamp is not None:
        headers["X-HubSpot-Request-Timestamp"] = timestamp
    return incoming(headers, body, url=HUBSPOT_URL)


def test_hubspot_v3_sdk_example():
    assert verify("hubspot", hubspot(), [HUBSPOT_SECRET], now=HUBSPOT_NOW)


def test_hubspot_failures():
    def reason(request, secret=HUBSPOT_SECRET, now=HUBSPOT_NOW):
        return rejected("hubspot", request, [secret], now=now)

    assert reason(hubspot(body=HUBSPOT_BODY + b" ")) == "bad_signature"
    assert reason(hubspot(), secret="xxxxxxxx-yyyy-yyyy-yyyy-yyyyyyyyyyyy") == "bad_signature"
    assert reason(incoming({}, HUBSPOT_BODY, url=HUBSPOT_URL)) == "missing_signature"
    assert reason(hubspot(timestamp=None)) == "missing_timestamp"
    # test_is_valid__expired_timestamp: HubSpot allows five minutes
    assert reason(hubspot(), now=15000000 / 1000 + 301) == "timestamp_outside_tolerance"


def test_hubspot_decodes_the_documented_escapes():
    from webhooks.schemes.hubspot import compute_signature

    encoded = "https://www.example.com/webhook_uri%3Fa%3Db%40c"
    decoded = "https://www.example.com/webhook_uri?a%3Db@c"
    assert compute_signature("s", "POST", encoded, b"", "1") == compute_signature(
        "s", "POST", decoded, b"", "1"
    )


# ---------------------------------------------------------------------------------------------
# Generic HMAC: configured to match published vectors of other providers.
def test_generic_hmac_reproduces_github_and_shopify_vectors():
    github_like = {"header": "X-Hub-Signature-256", "prefix": "sha256="}
    assert get_scheme("generic_hmac").validate_config(github_like) == {}
    request = incoming({"X-Hub-Signature-256": GITHUB_SIGNATURE}, GITHUB_BODY)
    assert verify("generic_hmac", request, [GITHUB_SECRET], config=github_like)

    shopify_like = {"header": "X-Shopify-Hmac-SHA256", "encoding": "base64"}
    request = incoming({"X-Shopify-Hmac-SHA256": SHOPIFY_HMAC}, SHOPIFY_BODY)
    assert verify("generic_hmac", request, [SHOPIFY_SECRET], config=shopify_like)


def test_generic_hmac_reproduces_slack_and_svix_vectors_with_templates():
    slack_like = {
        "header": "X-Slack-Signature",
        "prefix": "v0=",
        "template": "v0:{timestamp}:{body}",
        "timestamp_header": "X-Slack-Request-Timestamp",
    }
    assert get_scheme("generic_hmac").validate_config(slack_like) == {}
    assert verify(
        "generic_hmac",
        incoming(SLACK_HEADERS, SLACK_BODY),
        [SLACK_SECRET],
        config=slack_like,
        now=SLACK_NOW,
    )
    assert (
        rejected(
            "generic_hmac",
            incoming(SLACK_HEADERS, SLACK_BODY),
            [SLACK_SECRET],
            config=slack_like,
            now=SLACK_NOW + 600,
        )
        == "timestamp_outside_tolerance"
    )

    svix_like = {
        "header": "webhook-signature",
        "prefix": "v1,",
        "separator": " ",
        "encoding": "base64",
        "template": "{id}.{timestamp}.{body}",
        "id_header": "webhook-id",
        "timestamp_header": "webhook-timestamp",
        "secret_encoding": "base64",
    }
    assert get_scheme("generic_hmac").validate_config(svix_like) == {}
    key = SVIX_SECRET.removeprefix("whsec_")
    assert verify(
        "generic_hmac", incoming(svix_headers(), SVIX_BODY), [key], config=svix_like, now=SVIX_NOW
    )


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_generic_hmac_algorithms_and_encodings(algorithm, encoding):
    body = b'{"id": 1}'
    digest = hmac.new(b"k3y", body, getattr(hashlib, algorithm)).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    config = {"header": "X-Sig", "algorithm": algorithm, "encoding": encoding}
    assert verify("generic_hmac", incoming({"X-Sig": value}, body), ["k3y"], config=config)
    assert (
        rejected("generic_hmac", incoming({"X-Sig": value}, body + b"x"), ["k3y"], config=config)
        == "bad_signature"
    )
    assert (
        rejected("generic_hmac", incoming({"X-Sig": value}, body), ["k3z"], config=config)
        == "bad_signature"
    )
    assert rejected("generic_hmac", incoming({}, body), ["k3y"], config=config) == (
        "missing_signature"
    )


def test_generic_hmac_config_is_validated():
    scheme = get_scheme("generic_hmac")
    assert "header" in scheme.validate_config({})
    assert "algorithm" in scheme.validate_config({"header": "X", "algorithm": "md5"})
    assert "template" in scheme.validate_config({"header": "X", "template": "{timestamp}"})
    assert "template" in scheme.validate_config({"header": "X", "template": "{timestamp}.{body}"})
    assert "colour" in scheme.validate_config({"header": "X", "colour": "red"})


# ---------------------------------------------------------------------------------------------
# Square
# Source: square/square-python-sdk tests/utilities/test_webhooks_helper.py (verbatim: body,
# signature header, signature key, notification URL), which tests the SDK's
# is_valid_webhook_event_signature(body, signature, key, notification_url).
SQUARE_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f",'
    b'"created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
SQUARE_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
SQUARE_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
SQUARE_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"


def square(signature=SQUARE_SIGNATURE, body=SQUARE_BODY, url=SQUARE_URL):
    headers = {"x-square-hmacsha256-signature": signature} if signature else {}
    return incoming(headers, body, url=url)


def test_square_sdk_example():
    assert verify("square", square(), [SQUARE_KEY]).key_label == "current"


def test_square_failures():
    # The SDK's own negative cases: URL mismatch, another key, another signature, another body.
    other_url = "https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9"
    assert rejected("square", square(url=other_url), [SQUARE_KEY]) == "bad_signature"
    assert rejected("square", square(), ["MCmhFRxGX82xMwg5FsaoQA"]) == "bad_signature"
    wrong = "1z2n3DEJJiUPKcPzQo1ftvbxGdw="
    assert rejected("square", square(signature=wrong), [SQUARE_KEY]) == "bad_signature"
    changed = SQUARE_BODY.replace(b"2022-07-13", b"2022-06-13")
    assert rejected("square", square(body=changed), [SQUARE_KEY]) == "bad_signature"
    assert rejected("square", square(signature=None), [SQUARE_KEY]) == "missing_signature"
    assert rejected("square", square(signature="not base64!"), [SQUARE_KEY]) == "bad_signature"


# ---------------------------------------------------------------------------------------------
# SendGrid signed Event Webhook
# Source: sendgrid/sendgrid-python test/unit/test_eventwebhook.py (verbatim: public key,
# signature, timestamp; the payload is the json.dumps(..., sort_keys=True,
# separators=(",", ":")) + "\r\n" that test builds, written out here as its bytes).
SENDGRID_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62"
    "gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SENDGRID_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15Tlu"
    "LtEZtM="
)
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-'
    b'5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",'
    b'"timestamp":1600112492}]\r\n'
)
# test_verify_bad_key's other key and test_verify_bad_signature's other signature.
SENDGRID_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REn"
    "tlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SENDGRID_OTHER_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWY"
    "NH3j/0="
)
SENDGRID_NOW = int(SENDGRID_TIMESTAMP) + 10


def sendgrid(signature=SENDGRID_SIGNATURE, body=SENDGRID_PAYLOAD, timestamp=SENDGRID_TIMESTAMP):
    headers = {}
    if signature is not None:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = signature
    if timestamp is not None:
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp
    return incoming(headers, body)


def test_sendgrid_sdk_example():
    verified = verify("sendgrid", sendgrid(), [SENDGRID_PUBLIC_KEY], now=SENDGRID_NOW)
    assert (verified.key_label, verified.timestamp) == ("current", float(SENDGRID_TIMESTAMP))


def test_sendgrid_failures():
    def reason(request, keys=(SENDGRID_PUBLIC_KEY,), now=SENDGRID_NOW):
        return rejected("sendgrid", request, list(keys), now=now)

    # The SDK's negative cases: another key, another payload, another signature, a timestamp
    # that is not the signed one.
    assert reason(sendgrid(), keys=[SENDGRID_OTHER_KEY]) == "bad_signature"
    assert reason(sendgrid(body=b"payload")) == "bad_signature"
    assert reason(sendgrid(signature=SENDGRID_OTHER_SIGNATURE)) == "bad_signature"
    assert reason(sendgrid(timestamp="timestamp")) == "malformed_timestamp"
    assert reason(sendgrid(timestamp=str(int(SENDGRID_TIMESTAMP) + 1))) == "bad_signature"
    assert reason(sendgrid(signature=None)) == "missing_signature"
    assert reason(sendgrid(timestamp=None)) == "missing_timestamp"
    assert reason(sendgrid(), now=int(SENDGRID_TIMESTAMP) + 301) == "timestamp_outside_tolerance"
    assert reason(sendgrid(), keys=["not a key"]) == "bad_signature"


def test_sendgrid_verification_key_is_validated():
    scheme = get_scheme("sendgrid")
    assert scheme.validate_secret(SENDGRID_PUBLIC_KEY) is None
    pem = f"-----BEGIN PUBLIC KEY-----\n{SENDGRID_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n"
    assert scheme.validate_secret(pem) is None
    assert scheme.validate_secret("whsec_abc") is not None
    ed25519 = Ed25519PrivateKey.generate().public_key()
    der = ed25519.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert scheme.validate_secret(base64.b64encode(der).decode()) is not None


# ---------------------------------------------------------------------------------------------
# Microsoft Graph (no cryptographic vector exists: Graph echoes a shared clientState)
# Source: https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks —
# the body is shaped after its notification example ("clientState": "secretClientValue");
# validation is "POST {notificationUrl}?validationToken={opaqueToken}", answered 200
# text/plain with the token (same page, "Notification endpoint validation").
GRAPH_BODY = (
    b'{"value":[{"id":"lsgTZMr9KwAAA","subscriptionId":"{subscription_guid}",'
    b'"subscriptionExpirationDateTime":"2016-03-19T22:11:09.952Z",'
    b'"clientState":"secretClientValue","changeType":"created",'
    b'"resource":"users/{user_guid}@{tenant_guid}/messages/{long_id_string}",'
    b'"tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95",'
    b'"resourceData":{"@odata.type":"#Microsoft.Graph.Message",'
    b'"@odata.id":"Users/{user_guid}@{tenant_guid}/Messages/{long_id_string}",'
    b'"@odata.etag":"W/\\"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf\\"","id":"{long_id_string}"}}]}'
)


def test_graph_client_state_and_validation_token():
    scheme = get_scheme("msgraph")
    assert verify("msgraph", incoming({}, GRAPH_BODY), ["secretClientValue"])
    assert rejected("msgraph", incoming({}, GRAPH_BODY), ["otherValue"]) == "bad_signature"
    assert rejected("msgraph", incoming({}, b'{"value": []}'), ["secretClientValue"]) == (
        "missing_signature"
    )
    assert b"secretClientValue" not in scheme.display_body(GRAPH_BODY)
    handshake = scheme.handshake_before_verification(
        incoming({}, b"", query="validationToken=Validation%3A+Testing+client+application"),
        config={},
    )
    assert handshake.status_code == 200
    assert handshake["Content-Type"].startswith("text/plain")
    assert handshake.content == b"Validation: Testing client application"
    assert scheme.handshake_before_verification(incoming({}, GRAPH_BODY), config={}) is None


def test_every_scheme_rejects_an_empty_request():
    for slug in SCHEMES:
        config = {"header": "X-Sig"} if slug == "generic_hmac" else {}
        reason = rejected(slug, incoming({}, b""), ["secret"], config=config)
        assert reason in ("missing_signature", "missing_header", "missing_timestamp"), slug


def test_previous_key_is_reported():
    request = incoming({"X-Hub-Signature-256": GITHUB_SIGNATURE}, GITHUB_BODY)
    assert verify("github", request, ["new secret", GITHUB_SECRET]).key_label == "previous"
