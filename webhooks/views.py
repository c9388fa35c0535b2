"""The receiver: ``POST /webhooks/<registration id>/``.

Checks run in a fixed order, each with its own status (documented in docs/webhooks.md):

1. body over ``CASTIEL_WEBHOOK_MAX_BODY_BYTES`` → 413 (not read);
2. unknown registration → 404; inactive registration or tenant → 410;
3. unsigned handshakes the scheme answers itself (Microsoft Graph ``validationToken``);
4. no signing secret configured → 401 ``missing_secret`` (fail closed); the secret store
   unreachable → 503;
5. signature missing, malformed or wrong → 401 with the reason code; signed timestamp outside
   the tolerance → 401 ``timestamp_outside_tolerance``;
6. signed handshakes (Slack ``url_verification``) → the challenge;
7. over the registration's or tenant's rate limit → 429 with ``Retry-After`` (a duplicate of
   an event already stored still gets its 200);
8. store the event (the insert commits here) → 2xx; an already stored dedupe key → 200
   ``duplicate``, not processed again (schemes that sign only the body — GitHub — also treat
   the same body within the retention window as a duplicate); the database unavailable → 503
   with ``Retry-After``.

**2xx only after the insert committed**; processing is queued afterwards (a broker failure
does not change the answer: the sweeper re-queues stored events). Rejections, duplicates and
handshakes are audited too (bounded per minute so forgeries cannot fill the table).
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from castiel.api.errors import error_body
from castiel.events import Kind, emit
from castiel.observability import tracing
from castiel.observability.logging import get_logger
from castiel.observability.redaction import redact_query
from castiel.observability.server_span import traced_endpoint
from webhooks import lookup, metrics, receipt, signing, throttle
from webhooks.dedupe import dedupe_key
from webhooks.models import WebhookEvent
from webhooks.redaction import redact_headers
from webhooks.schemes import Incoming, UnknownScheme, VerificationFailed, get_scheme

log = get_logger(__name__)

Outcome = WebhookEvent.Outcome
RETRY_AFTER_UNAVAILABLE = "5"

MESSAGES = {
    "body_too_large": "The request body is larger than this endpoint accepts.",
    "not_found": "No webhook endpoint here.",
    "inactive": "This webhook endpoint is disabled.",
    "missing_secret": "No signing secret is configured for this endpoint.",
    "unsupported_scheme": "This endpoint's signature scheme is not available.",
    "missing_signature": "The signature is missing.",
    "malformed_signature": "The signature header cannot be parsed.",
    "bad_signature": "The signature does not match.",
    "missing_timestamp": "The signed timestamp is missing.",
    "malformed_timestamp": "The signed timestamp cannot be parsed.",
    "timestamp_outside_tolerance": "The signed timestamp is too far from now.",
    "missing_header": "A header the signature covers is missing.",
    "bad_body_hash": "The body does not match its signed hash.",
    "verification_error": "The signature could not be verified.",
    "rate_limited": "Too many deliveries; retry later.",
    "storage_unavailable": "The event could not be stored; retry later.",
    "method_not_allowed": "Deliveries are POST requests.",
}


class BodyTooLarge(Exception):
    pass


def read_body(request, limit: int) -> bytes:
    """The raw body, refusing (without reading) anything declared or found over ``limit``."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            pass
    # Read the stream directly: request.body would apply DATA_UPLOAD_MAX_MEMORY_SIZE with a
    # 400, and nothing here may parse or re-serialise the bytes that were signed.
    data = request.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge
    return data


def _error(status: int, code: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, MESSAGES.get(code, code)), status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _public_url(request, config: dict) -> str:
    """The URL the provider called, for schemes that sign it.

    A configured ``url`` (or the public base URL) gives the scheme, host and path — what a
    proxy changes — and the query string is always the request's own, exactly as received:
    the provider signed the query it sent (Twilio adds ``bodySHA256=`` to JSON deliveries),
    so a configured query would fail every such delivery and let a changed query verify.
    """
    if config.get("url"):
        parts = urlsplit(config["url"])
        query = request.META.get("QUERY_STRING", "")
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    base = settings.CASTIEL_WEBHOOK_PUBLIC_BASE_URL
    if base:
        return base.rstrip("/") + request.get_full_path()
    return request.build_absolute_uri()


def _request_data(request, body: bytes) -> dict:
    return {
        "method": request.method[:10],
        # Stored for operators: secret-looking values (?token=…) never are.
        "query_string": redact_query(request.META.get("QUERY_STRING", "")[:4096]),
        "headers": redact_headers(request.headers),
        "body": body,
        "body_size": len(body),
        "content_type": (request.META.get("CONTENT_TYPE") or "")[:200],
        "remote_addr": (request.META.get("REMOTE_ADDR") or "")[:64],
    }


AUDIT_BODY_BYTES = 64 * 1024


def _audit(snapshot, scheme_slug: str, *, outcome, reason, status, data, **extra) -> None:
    """Record a delivery that was not accepted (bounded; never changes the response).

    Only the first 64 KiB of such a body is kept (``body_size`` keeps the real size): it is
    evidence, not something to process, and forgeries must not cost megabytes each.
    """
    metrics.DELIVERIES.labels(scheme_slug, outcome, reason).inc()
    if not throttle.noise_allowed(snapshot):
        return
    data = {**data, "body": data["body"][:AUDIT_BODY_BYTES]}
    try:
        receipt.event_store(
            snapshot=snapshot,
            outcome=outcome,
            reason=reason,
            http_status=status,
            request_data=data,
            **extra,
        )
    except DatabaseError:
        log.warning("webhooks.audit_failed", registration=snapshot.id, reason=reason)


def _reject(snapshot, scheme_slug: str, reason: str, status: int, data, **headers) -> JsonResponse:
    tracing.set_span_attributes(outcome=reason)
    log.info("webhooks.rejected", registration=snapshot.id, reason=reason, status=status)
    _audit(snapshot, scheme_slug, outcome=Outcome.REJECTED, reason=reason, status=status, data=data)
    return _error(status, reason, **headers)


def _signature_rejected(snapshot, reason: str) -> None:
    """One rejection counts towards the registration's spike (an incident past the threshold
    within the window: a wrong secret, or an attack)."""
    emit(
        Kind.WEBHOOK_SIGNATURES_REJECTED,
        tenant=snapshot.tenant_id,
        integration=snapshot.integration_id,
        subject=("webhookregistration", snapshot.id),
        message=f"signature check failed: {reason}",
    )


def _handshake(snapshot, scheme_slug: str, response, data, matched_secret: str = ""):
    """Audit a handshake the scheme answered (before or after verification) and return it."""
    _audit(
        snapshot,
        scheme_slug,
        outcome=Outcome.HANDSHAKE,
        reason="handshake",
        status=response.status_code,
        data=data,
        matched_secret=matched_secret,
    )
    return response


def _duplicate(snapshot, scheme_slug, original_id, key, data, reason="duplicate") -> JsonResponse:
    """A delivery already stored: ``duplicate`` (same dedupe key) or ``duplicate_body`` (the
    same signed body under another delivery id, for schemes that sign only the body)."""
    _audit(
        snapshot,
        scheme_slug,
        outcome=Outcome.DUPLICATE,
        reason=reason,
        status=200,
        data=data,
        dedupe_key=key,
        duplicate_of_id=original_id,
    )
    return JsonResponse({"status": "duplicate", "event_id": str(original_id)}, status=200)


@csrf_exempt
@traced_endpoint
def receive(request, registration_id: str):
    started = time.perf_counter()
    if request.method != "POST":
        return _error(405, "method_not_allowed", Allow="POST")
    try:
        registration_uuid = uuid.UUID(registration_id)
    except ValueError:
        return _error(404, "not_found")
    try:
        body = read_body(request, settings.CASTIEL_WEBHOOK_MAX_BODY_BYTES)
    except BodyTooLarge:
        metrics.DELIVERIES.labels("unknown", Outcome.REJECTED, "body_too_large").inc()
        return _error(413, "body_too_large")

    try:
        snapshot = lookup.get_registration(registration_uuid)
    except DatabaseError:
        log.warning("webhooks.lookup_unavailable", registration=registration_id)
        return _error(503, "storage_unavailable", Retry_After=RETRY_AFTER_UNAVAILABLE)
    if snapshot is None:
        metrics.DELIVERIES.labels("unknown", Outcome.REJECTED, "not_found").inc()
        return _error(404, "not_found")
    tracing.set_span_attributes(tenant=snapshot.tenant_id, registration=snapshot.id)

    def data() -> dict:
        return _request_data(request, body)

    try:
        scheme = get_scheme(snapshot.scheme)
    except UnknownScheme:
        return _reject(snapshot, snapshot.scheme, "unsupported_scheme", 401, data())
    if not snapshot.is_active or not snapshot.tenant_active:
        return _reject(snapshot, scheme.slug, "inactive", 410, data())

    config = snapshot.scheme_config
    incoming = Incoming(
        method=request.method,
        path=request.path,
        query_string=request.META.get("QUERY_STRING", ""),
        headers=request.headers,
        body=body,
        url_resolver=lambda: _public_url(request, config),
    )

    handshake = scheme.handshake_before_verification(incoming, config=config)
    if handshake is not None:
        return _handshake(snapshot, scheme.slug, handshake, data())

    try:
        keys = signing.signing_keys(snapshot)
    except (signing.SecretsUnavailable, DatabaseError):
        log.warning("webhooks.secrets_unavailable", registration=snapshot.id)
        return _error(503, "storage_unavailable", Retry_After=RETRY_AFTER_UNAVAILABLE)
    if not keys:
        return _reject(snapshot, scheme.slug, "missing_secret", 401, data())

    try:
        verified = scheme.verify(
            incoming,
            keys,
            config=config,
            tolerance=snapshot.timestamp_tolerance,
            now=time.time(),
        )
    except VerificationFailed as failure:
        _signature_rejected(snapshot, failure.reason)
        return _reject(snapshot, scheme.slug, failure.reason, 401, data())
    except Exception:  # a scheme bug must fail closed, never 500 or accept
        log.exception("webhooks.verification_error", registration=snapshot.id)
        return _reject(snapshot, scheme.slug, "verification_error", 401, data())

    handshake = scheme.handshake(incoming, config=config)
    if handshake is not None:
        return _handshake(snapshot, scheme.slug, handshake, data(), verified.key_label)

    key = dedupe_key(snapshot.dedupe_rule or scheme.default_dedupe, incoming)

    decision = throttle.check(snapshot)
    if not decision.allowed:
        try:
            original = receipt.original_event(snapshot=snapshot, dedupe_key=key)
        except DatabaseError:
            original = None
        if original is not None:
            return _duplicate(snapshot, scheme.slug, original.pk, key, data())
        return _reject(
            snapshot,
            scheme.slug,
            "rate_limited",
            429,
            data(),
            Retry_After=str(decision.retry_after),
        )

    try:
        event_id, stored = receipt.event_accept(
            snapshot=snapshot,
            dedupe_key=key,
            request_data=data(),
            matched_secret=verified.key_label,
            started=started,
        )
    except DatabaseError:
        log.error("webhooks.store_failed", registration=snapshot.id, exc_info=True)
        metrics.DELIVERIES.labels(scheme.slug, Outcome.REJECTED, "storage_unavailable").inc()
        return _error(503, "storage_unavailable", Retry_After=RETRY_AFTER_UNAVAILABLE)
    if stored != "created":
        if event_id is None:  # the original vanished between the conflict and the read
            return _error(503, "storage_unavailable", Retry_After=RETRY_AFTER_UNAVAILABLE)
        return _duplicate(snapshot, scheme.slug, event_id, key, data(), reason=stored)

    receipt.event_enqueue(event_id, coalesce=True)
    tracing.set_span_attributes(event=event_id, outcome="accepted")
    deliveries, receive_time = metrics.accepted(scheme.slug)
    deliveries.inc()
    receive_time.observe(time.perf_counter() - started)
    return _accepted(event_id, scheme.accepted_status)


def _accepted(event_id, status: int) -> HttpResponse:
    """``{"status": "accepted", "event_id": "…"}``: the bytes ``JsonResponse`` would send, built
    without the JSON encoder — most of this answer's CPU, on every accepted delivery
    (docs/benchmarks.md, "Session 9")."""
    content = b'{"status": "accepted", "event_id": "%s"}' % str(event_id).encode()
    return HttpResponse(content, content_type="application/json", status=status)
