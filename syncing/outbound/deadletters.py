"""Dead letters: changes the push worker gave up on — recorded, inspected, replayed, discarded.

A dead letter keeps what an operator needs to decide: the error code and message, a summary
of the request (method, URL without its query string, the few headers Castiel chose to keep,
the body sent) and of the response (status, a few headers, a body excerpt), the attempts and
their log. Never credentials: the request's ``Authorization``/cookie headers and query string
are not kept, and any JSON key that looks like a secret (the same rule the logs use) is
redacted in both bodies.

The change stays ``dead`` and holds back later changes of its record (order per record), until
:func:`dead_letter_replay` puts it back in the outbox (attempts reset, same idempotency key) or
:func:`dead_letter_discard` drops it (the record's later changes then go ahead).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from castiel.observability.logging import get_logger
from syncing.errors import body_excerpt, error_code, error_message
from syncing.models import DeadLetter, OutboundChange
from syncing.records import notices, outbox

log = get_logger(__name__)

# Request headers worth keeping for a diagnosis (everything else is dropped, credentials first).
KEPT_REQUEST_HEADERS = ("content-type", "idempotency-key", "if-match", "x-correlation-id")
KEPT_RESPONSE_HEADERS = (
    "content-type",
    "retry-after",
    "x-request-id",
    "request-id",
    "x-ratelimit-remaining",
    "ratelimit-remaining",
    "idempotent-replayed",
    "stripe-should-retry",
)


class DeadLetterError(ValueError):
    pass


# -- summaries ---------------------------------------------------------------------------------


def _strip_query(url: str) -> str:
    parts = urlsplit(url or "")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _kept(headers, names) -> dict[str, str]:
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    return {name: lowered[name] for name in names if name in lowered}


def request_summary(exc: BaseException, adapter=None) -> dict:
    """What was sent: from the failed response's request, else the adapter's last write."""
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None)
    if request is not None:
        return {
            "method": request.method,
            "url": _strip_query(request.url),
            "headers": _kept(request.headers, KEPT_REQUEST_HEADERS),
            "body": body_excerpt(request.body),
        }
    # A batch item's failure carries its own part of the batch (batches.py); otherwise the
    # adapter's last write describes it.
    described = getattr(exc, "request_described", None) or (
        adapter.describe_request() if adapter is not None else {}
    )
    if not described:
        return {}
    return {
        "method": described.get("method", ""),
        "url": _strip_query(described.get("url", "")),
        "headers": _kept(described.get("headers"), KEPT_REQUEST_HEADERS),
        "body": body_excerpt(described.get("body")),
    }


def response_summary(exc: BaseException) -> tuple[int | None, dict, str]:
    response = getattr(exc, "response", None)
    if response is None:
        return getattr(exc, "status", None), {}, body_excerpt(getattr(exc, "body_excerpt", ""))
    return (
        response.status_code,
        _kept(response.headers, KEPT_RESPONSE_HEADERS),
        body_excerpt(response.content),
    )


# -- services ----------------------------------------------------------------------------------


def dead_letter_create(
    *, change: OutboundChange, exc: BaseException, adapter=None, reason: str = ""
) -> DeadLetter:
    """Record the dead letter (call inside the transaction that marks the change dead)."""
    status, headers, body = response_summary(exc)
    message = error_message(exc)
    if reason:
        message = f"{reason}: {message}"
    dead_letter = DeadLetter.objects.create(
        tenant_id=change.tenant_id,
        change=change,
        integration_id=change.integration_id,
        entity_type=change.entity_type,
        record_id=change.record_id,
        external_id=change.external_id,
        operation=change.operation,
        retryable=bool(getattr(exc, "retryable", False)),
        error_code=error_code(exc),
        error_message=message,
        request=request_summary(exc, adapter),
        response_status=status,
        response_headers=headers,
        response_body=body,
        attempts=change.attempts,
        attempt_log=change.attempt_log,
        correlation_id=change.correlation_id,
        execution_id=change.execution_id,
    )
    notices.dead_letter_created(dead_letter)  # sent once the transaction commits
    return dead_letter


def dead_letter_replay(*, dead_letter: DeadLetter, by: str = "") -> DeadLetter:
    """Put the change back in the outbox: attempts start again.

    The idempotency key stays — unless the provider answered the last attempt with a 4xx:
    then it definitely applied nothing, and it keeps that answer under the old key (a replay
    with fixed data under it would only get the stored error, or Stripe's
    ``idempotency_error``), so the replay gets a new key. After timeouts or 5xx the outcome is
    unknown and the key must stay, or a create could land twice.
    """
    with transaction.atomic():
        dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if dead_letter.status != DeadLetter.Status.OPEN:
            raise DeadLetterError(f"this dead letter is already {dead_letter.status}")
        now = timezone.now()
        rejected = not dead_letter.retryable and 400 <= (dead_letter.response_status or 0) < 500
        revived = OutboundChange.objects.filter(
            pk=dead_letter.change_id, status=OutboundChange.Status.DEAD
        ).update(
            key_generation=F("key_generation") + (1 if rejected else 0),
            status=OutboundChange.Status.PENDING,
            status_reason=f"replayed by {by or 'an operator'}",
            attempts=0,
            next_attempt_at=now,
            lease_owner="",
            lease_expires_at=None,
            finished_at=None,
        )
        if not revived:
            raise DeadLetterError("the change is no longer dead")
        _resolve(dead_letter, DeadLetter.Status.REPLAYED, by, now)
        outbox.wake_after_commit()
    log.info("outbound.dead_letter_replayed", dead_letter_id=str(dead_letter.pk), by=by)
    return dead_letter


def dead_letter_discard(*, dead_letter: DeadLetter, by: str = "") -> DeadLetter:
    """Give the change up for good; later changes of its record go ahead."""
    with transaction.atomic():
        dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if dead_letter.status != DeadLetter.Status.OPEN:
            raise DeadLetterError(f"this dead letter is already {dead_letter.status}")
        now = timezone.now()
        OutboundChange.objects.filter(
            pk=dead_letter.change_id, status=OutboundChange.Status.DEAD
        ).update(
            status=OutboundChange.Status.DISCARDED,
            status_reason=f"discarded by {by or 'an operator'}",
            finished_at=now,
        )
        _resolve(dead_letter, DeadLetter.Status.DISCARDED, by, now)
        outbox.wake_after_commit()
    log.info("outbound.dead_letter_discarded", dead_letter_id=str(dead_letter.pk), by=by)
    return dead_letter


def dead_letters_replay(*, dead_letters, by: str = "") -> tuple[list, dict[str, str]]:
    """Replay many: (replayed, {id: why not}) — one failure does not stop the others."""
    return _each(dead_letters, dead_letter_replay, by)


def dead_letters_discard(*, dead_letters, by: str = "") -> tuple[list, dict[str, str]]:
    return _each(dead_letters, dead_letter_discard, by)


def _each(dead_letters, action, by):
    done, skipped = [], {}
    for dead_letter in dead_letters:
        try:
            done.append(action(dead_letter=dead_letter, by=by))
        except DeadLetterError as exc:
            skipped[str(dead_letter.pk)] = str(exc)
    return done, skipped


def _resolve(dead_letter: DeadLetter, status: str, by: str, now) -> None:
    dead_letter.status = status
    dead_letter.resolved_at = now
    dead_letter.resolved_by = by[:200]
    dead_letter.save(update_fields=["status", "resolved_at", "resolved_by"])
    notices.dead_letters_maybe_cleared(dead_letter.tenant_id, dead_letter.integration_id)
