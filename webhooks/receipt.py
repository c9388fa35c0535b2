"""Receipt: store a verified delivery durably (the 2xx waits for this), recognise duplicates
by dedupe key or signed body, and queue its processing."""

from __future__ import annotations

import hashlib
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from castiel.observability.context import get_correlation_id
from castiel.observability.logging import get_logger
from castiel.queue import enqueue
from webhooks.models import WebhookBodySeen, WebhookEvent
from webhooks.receipt_insert import BodySeenConflict, insert_event
from webhooks.schemes import get_scheme

log = get_logger(__name__)

PROCESS_TASK = "webhooks.tasks.process_event"


def event_store(
    *,
    snapshot,
    outcome: str,
    reason: str,
    http_status: int,
    request_data: dict,
    dedupe_key: str = "",
    matched_secret: str = "",
    receive_ms: float | None = None,
    duplicate_of_id=None,
    body_seen: tuple[str, datetime] | None = None,
) -> uuid.UUID:
    """Insert one audit row, committed when this returns (raises DatabaseError); returns its id.

    ``body_seen``: also claim the body's hash in the same statement (PostgreSQL, see
    ``webhooks.receipt_insert``)."""
    accepted = outcome == WebhookEvent.Outcome.ACCEPTED
    # Outside a transaction (the receiver's normal case) the INSERT runs in autocommit mode:
    # one statement, durably committed when execute() returns — no BEGIN/COMMIT round trips.
    # Inside one (tests, callers' atomic blocks) a savepoint keeps a dedupe conflict from
    # breaking the caller's transaction.
    values = {
        "id": uuid.uuid4(),
        "tenant_id": snapshot.tenant_id,
        "registration_id": snapshot.id,
        "outcome": outcome,
        "reason": reason,
        "http_status": http_status,
        "status": WebhookEvent.Status.RECEIVED if accepted else WebhookEvent.Status.NONE,
        "dedupe_key": dedupe_key,
        "duplicate_of_id": duplicate_of_id,
        "matched_secret": matched_secret,
        "correlation_id": get_correlation_id() or "",
        "received_at": timezone.now(),
        "receive_ms": receive_ms,
        **request_data,
    }
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard:
        insert_event(values, body_seen=body_seen)
    return values["id"]


class _BodyReplayed(Exception):
    """The signed body was already accepted within the window (rolls the new event back)."""

    def __init__(self, original_id):
        super().__init__(str(original_id))
        self.original_id = original_id


def event_accept(
    *, snapshot, dedupe_key: str, request_data: dict, matched_secret: str, started: float
) -> tuple[uuid.UUID | None, str]:
    """Store an accepted delivery. Returns (event id, outcome): ``"created"``, or for a
    duplicate the original event's id (None if it vanished meanwhile) and ``"duplicate"``
    (same dedupe key) or ``"duplicate_body"`` (same signed body, see ``WebhookBodySeen``).

    The insert commits before this returns, which is what allows the 2xx. Schemes that sign
    the body alone also claim the body's hash, in the same transaction as the event.
    """
    scheme = get_scheme(snapshot.scheme)

    def store(body_seen=None) -> uuid.UUID:
        return event_store(
            snapshot=snapshot,
            outcome=WebhookEvent.Outcome.ACCEPTED,
            reason="ok",
            http_status=scheme.accepted_status,
            request_data=request_data,
            dedupe_key=dedupe_key,
            matched_secret=matched_secret,
            receive_ms=round((time.perf_counter() - started) * 1000, 3),
            body_seen=body_seen,
        )

    try:
        if scheme.dedupe_signed_body and _one_statement():
            # The event and its body's claim in one autocommitted statement; a claimed body
            # (a replay, or a claim past the window to take over) goes the careful way below.
            digest = hashlib.sha256(request_data["body"]).hexdigest()
            try:
                return store(body_seen=(digest, timezone.now())), "created"
            except BodySeenConflict:
                pass
        if scheme.dedupe_signed_body:
            with transaction.atomic():
                event_id = store()
                _claim_body(snapshot, event_id, request_data["body"])
        else:
            event_id = store()
    except IntegrityError:
        original = original_event(snapshot=snapshot, dedupe_key=dedupe_key)
        return (original.pk if original is not None else None), "duplicate"
    except _BodyReplayed as replay:
        original = WebhookEvent.objects.filter(pk=replay.original_id)
        return original.values_list("id", flat=True).first(), "duplicate_body"
    return event_id, "created"


def _one_statement() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _claim_body(snapshot, event_id: uuid.UUID, body: bytes) -> None:
    """Record that event ``event_id`` carries ``body``, or raise :class:`_BodyReplayed` when an
    event accepted within the retention window already does.

    Race-free: the unique (registration, hash) row is inserted in the event's transaction, so
    of two concurrent deliveries of one body the second waits on the first's index entry and
    then sees it. A row older than the window (its event still kept, e.g. pending) is taken
    over with a conditional UPDATE, which only one taker can win.
    """
    digest = hashlib.sha256(body).hexdigest()
    now = timezone.now()
    try:
        with transaction.atomic():
            WebhookBodySeen.objects.create(
                registration_id=snapshot.id, body_sha256=digest, event_id=event_id, seen_at=now
            )
        return
    except IntegrityError:
        pass
    seen = WebhookBodySeen.objects.filter(registration_id=snapshot.id, body_sha256=digest)
    cutoff = now - timedelta(days=settings.CASTIEL_WEBHOOK_RETENTION_DAYS)
    if seen.filter(seen_at__lt=cutoff).update(event_id=event_id, seen_at=now):
        return
    original_id = seen.values_list("event_id", flat=True).first()
    raise _BodyReplayed(original_id)


def original_event(*, snapshot, dedupe_key: str) -> WebhookEvent | None:
    return (
        WebhookEvent.objects.filter(
            registration_id=snapshot.id,
            dedupe_key=dedupe_key,
            outcome=WebhookEvent.Outcome.ACCEPTED,
        )
        .only("id")
        .first()
    )


def event_enqueue(event_id, *, coalesce: bool = False) -> bool:
    """Queue processing; a broker failure is logged, not raised (the sweeper recovers it).

    The receiver coalesces: its wake-ups leave in batches (castiel/wakeups.py), which is
    safe because a stored event whose wake-up is lost is re-queued by the sweeper.
    """
    try:
        enqueue(PROCESS_TASK, str(event_id), kind="webhooks", coalesce=coalesce)
        return True
    except Exception:
        log.warning("webhooks.enqueue_failed", event_id=str(event_id), exc_info=True)
        return False
