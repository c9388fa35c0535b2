"""Write operations of the webhooks app (registrations, events, processing, replay, retention)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from castiel.db.leases import claim_row, fenced_update
from castiel.http.retry import RetryPolicy
from castiel.observability.context import get_correlation_id
from castiel.observability.logging import get_logger
from castiel.queue import enqueue
from castiel.tenancy.models import active_tenant_ids
from webhooks import lookup, metrics, parsers, routing, signing
from webhooks.models import WebhookBodySeen, WebhookEvent, WebhookRegistration
from webhooks.parsers.base import Delivery, ParseError
from webhooks.receipt_insert import BodySeenConflict, insert_event
from webhooks.schemes import get_scheme
from webhooks.validation import validate_secret

log = get_logger(__name__)

PROCESS_TASK = "webhooks.tasks.process_event"
EDITABLE_FIELDS = (
    "name",
    "integration",
    "scheme",
    "scheme_config",
    "parser",
    "parser_config",
    "timestamp_tolerance",
    "dedupe_rule",
    "event_types",
    "routes",
    "rate_limit_per_minute",
    "is_active",
)


# ---------------------------------------------------------------------------------------------
# Registrations
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def registration_create(*, tenant, name: str, scheme: str, secret: str = "", **fields):
    """Create a registration; ``secret`` (write-only) goes to the secret store."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown registration fields: {sorted(unknown)}")
    registration = WebhookRegistration(
        id=uuid.uuid4(), tenant=tenant, name=name, scheme=scheme, **fields
    )
    registration.secret_name = signing.secret_name_for(registration.id)
    registration.full_clean(exclude=["secret_name"])
    if secret:
        validate_secret(scheme, secret)
    registration.save(force_insert=True)
    if secret:
        registration.secret_version = signing.store_secret(registration, secret)
        registration.secret_rotated_at = timezone.now()
        registration.save(update_fields=["secret_version", "secret_rotated_at", "updated_at"])
    log.info("webhooks.registration_created", registration=str(registration.pk), scheme=scheme)
    return registration


@transaction.atomic
def registration_update(*, registration: WebhookRegistration, **fields) -> WebhookRegistration:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown registration fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(registration, name, value)
    registration.full_clean(exclude=["secret_name"])
    registration.save()
    return registration


@transaction.atomic
def registration_rotate_secret(
    *, registration: WebhookRegistration, secret: str, overlap_seconds: int | None = None
) -> WebhookRegistration:
    """Make ``secret`` current; the old one stays valid for ``overlap_seconds``.

    With an overlap of 0 the old secret stops working at once (use it when the old one
    leaked). A registration without a secret simply gets its first one.
    """
    validate_secret(registration.scheme, secret)
    if overlap_seconds is None:
        overlap_seconds = settings.CASTIEL_WEBHOOK_SECRET_OVERLAP_SECONDS
    if overlap_seconds < 0:
        raise ValueError("overlap_seconds cannot be negative")
    registration = WebhookRegistration.objects.select_for_update().get(pk=registration.pk)
    now = timezone.now()
    new_version = signing.store_secret(registration, secret)
    if registration.secret_version and overlap_seconds > 0:
        registration.previous_secret_version = registration.secret_version
        registration.previous_secret_expires_at = now + timedelta(seconds=overlap_seconds)
    else:
        registration.previous_secret_version = ""
        registration.previous_secret_expires_at = None
    registration.secret_version = new_version
    registration.secret_rotated_at = now
    registration.save(
        update_fields=[
            "secret_version",
            "previous_secret_version",
            "previous_secret_expires_at",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    log.info(
        "webhooks.secret_rotated",
        registration=str(registration.pk),
        overlap_seconds=overlap_seconds,
    )
    return registration


class SecretNotGenerated(ValueError):
    """The scheme's provider issues the secret; Castiel cannot make one up for it."""


def registration_generate_secret(
    *, registration: WebhookRegistration, overlap_seconds: int | None = None
) -> tuple[WebhookRegistration, str]:
    """Rotate to a new random secret, for schemes whose receiver chooses it (GitHub, Graph,
    generic HMAC); returns the registration and the secret, to be shown to the operator once
    and pasted into the provider. The previous secret keeps working for the overlap, so
    deliveries signed with it while the provider is updated are still accepted."""
    scheme = get_scheme(registration.scheme)
    if not scheme.receiver_chooses_secret:
        raise SecretNotGenerated(
            f"{scheme.label} issues its own signing secret: copy it from the provider "
            "and paste it here instead"
        )
    secret = scheme.generate_secret(registration.scheme_config or {})
    registration = registration_rotate_secret(
        registration=registration, secret=secret, overlap_seconds=overlap_seconds
    )
    return registration, secret


def registration_delete(*, registration: WebhookRegistration) -> None:
    name = registration.secret_name
    with transaction.atomic():
        registration.delete()
        transaction.on_commit(lambda: signing.delete_secret(name))


# ---------------------------------------------------------------------------------------------
# Receipt
# ---------------------------------------------------------------------------------------------
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
) -> WebhookEvent:
    """Insert one audit row, committed when this returns (raises DatabaseError).

    ``body_seen``: also claim the body's hash in the same statement (PostgreSQL, see
    ``webhooks.receipt_insert``)."""
    accepted = outcome == WebhookEvent.Outcome.ACCEPTED
    # Outside a transaction (the receiver's normal case) the INSERT runs in autocommit mode:
    # one statement, durably committed when execute() returns — no BEGIN/COMMIT round trips.
    # Inside one (tests, callers' atomic blocks) a savepoint keeps a dedupe conflict from
    # breaking the caller's transaction.
    event = WebhookEvent(
        tenant_id=snapshot.tenant_id,
        registration_id=snapshot.id,
        outcome=outcome,
        reason=reason,
        http_status=http_status,
        status=WebhookEvent.Status.RECEIVED if accepted else WebhookEvent.Status.NONE,
        dedupe_key=dedupe_key,
        matched_secret=matched_secret,
        correlation_id=get_correlation_id() or "",
        receive_ms=receive_ms,
        duplicate_of_id=duplicate_of_id,
        **request_data,
    )
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard:
        insert_event(event, body_seen=body_seen)
    return event


class _BodyReplayed(Exception):
    """The signed body was already accepted within the window (rolls the new event back)."""

    def __init__(self, original_id):
        super().__init__(str(original_id))
        self.original_id = original_id


def event_accept(
    *, snapshot, dedupe_key: str, request_data: dict, matched_secret: str, started: float
) -> tuple[WebhookEvent | None, str]:
    """Store an accepted delivery. Returns (event, outcome): ``"created"``, or for a
    duplicate the original event (None if it vanished meanwhile) and ``"duplicate"`` (same
    dedupe key) or ``"duplicate_body"`` (same signed body, see ``WebhookBodySeen``).

    The insert commits before this returns, which is what allows the 2xx. Schemes that sign
    the body alone also claim the body's hash, in the same transaction as the event.
    """
    scheme = get_scheme(snapshot.scheme)

    def store(body_seen=None) -> WebhookEvent:
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
                event = store()
                _claim_body(snapshot, event, request_data["body"])
        else:
            event = store()
    except IntegrityError:
        return original_event(snapshot=snapshot, dedupe_key=dedupe_key), "duplicate"
    except _BodyReplayed as replay:
        original = WebhookEvent.objects.filter(pk=replay.original_id).only("id").first()
        return original, "duplicate_body"
    return event, "created"


def _one_statement() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _claim_body(snapshot, event: WebhookEvent, body: bytes) -> None:
    """Record that ``event`` carries ``body``, or raise :class:`_BodyReplayed` when an event
    accepted within the retention window already does.

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
                registration_id=snapshot.id, body_sha256=digest, event=event, seen_at=now
            )
        return
    except IntegrityError:
        pass
    seen = WebhookBodySeen.objects.filter(registration_id=snapshot.id, body_sha256=digest)
    cutoff = now - timedelta(days=settings.CASTIEL_WEBHOOK_RETENTION_DAYS)
    if seen.filter(seen_at__lt=cutoff).update(event=event, seen_at=now):
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


# ---------------------------------------------------------------------------------------------
# Processing
# ---------------------------------------------------------------------------------------------
# WebhookEvent has no token column: its lease's expiry, unique per claim, names the holder
# (the owner column of the claim and of the fenced result write, castiel.db.leases).
LEASE_HOLDER = "lease_expires_at"


def _claim(event_id) -> tuple[WebhookEvent | None, object]:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.CASTIEL_WEBHOOK_LEASE_SECONDS)
    claimable = (
        Q(status=WebhookEvent.Status.RECEIVED)
        | Q(status=WebhookEvent.Status.RETRYING, next_attempt_at__lte=now)
        | Q(status=WebhookEvent.Status.PROCESSING, lease_expires_at__lt=now)
    )
    # A deactivated tenant's events are not processed: they wait, stored, until it is
    # reactivated (the sweeper skips them meanwhile).
    free = WebhookEvent.objects.filter(
        claimable,
        pk=event_id,
        outcome=WebhookEvent.Outcome.ACCEPTED,
        tenant_id__in=active_tenant_ids(),
    )
    claimed = claim_row(
        free,
        lease,
        {
            "status": WebhookEvent.Status.PROCESSING,
            "attempts": F("attempts") + 1,
            "processing_started_at": now,
        },
        owner=LEASE_HOLDER,
    )
    if not claimed:
        return None, lease
    return WebhookEvent.objects.select_related("registration").get(pk=event_id), lease


def _matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatchcase(event_type, pattern) for pattern in patterns)


def event_process(*, event_id) -> str | None:
    """Parse, route and run the follow-up actions of one stored event (idempotent).

    Only one worker can hold an event (a conditional UPDATE claims it with a lease, which also
    works on SQLite); a message for an event that is already done or held is a no-op. Actions
    that succeeded on an earlier attempt are not run again on a retry; a replay runs all.
    Returns the resulting status, or None when the event was not claimable.
    """
    event, lease = _claim(event_id)
    if event is None:
        log.info("webhooks.process_skipped", event_id=str(event_id))
        return None
    registration = event.registration
    scheme = get_scheme(registration.scheme)
    parser_slug = registration.parser or scheme.default_parser
    started = time.perf_counter()
    previous = [r for r in (event.actions or []) if r.get("status") == "ok"]
    done = {(r["action"], r.get("type"), r.get("external_id")) for r in previous}
    results = list(previous)
    fields: dict = {"last_error": ""}
    current: str | None = None
    context = routing.ActionContext(
        tenant_id=str(event.tenant_id),
        integration_id=str(registration.integration_id) if registration.integration_id else None,
        registration_id=str(registration.pk),
        webhook_event_id=str(event.pk),
        correlation_id=event.correlation_id,
        replay=event.replay_count > 0,
    )
    try:
        try:
            body = json.loads(bytes(event.body)) if event.body else None
        except (ValueError, UnicodeDecodeError):
            body = None
        delivery = Delivery(body=body, headers=event.headers, config=registration.parser_config)
        normalised = parsers.get_parser(parser_slug)(delivery)
        if normalised:
            first = normalised[0]
            fields.update(
                provider=first.provider,
                event_type=first.type[:200],
                entity_type=first.entity_type[:100],
                external_id=first.external_id[:255],
                occurred_at=first.occurred_at,
            )
        wanted = [
            ev
            for ev in normalised
            if not registration.event_types or _matches(registration.event_types, ev.type)
        ]
        ran_any = False
        for ev in wanted:
            for name in routing.actions_for(ev, parser=parser_slug, overrides=registration.routes):
                ran_any = True
                if (name, ev.type, ev.external_id) in done:
                    continue
                current = name
                outcome = routing.run_action(name, ev, context)
                results.append(
                    {
                        "action": name,
                        "type": ev.type,
                        "external_id": ev.external_id,
                        "status": "ok",
                        "result": outcome if isinstance(outcome, dict) else None,
                    }
                )
        status = WebhookEvent.Status.PROCESSED if ran_any else WebhookEvent.Status.IGNORED
        fields.update(status=status, processed_at=timezone.now(), next_attempt_at=None)
    except Exception as exc:
        retryable = getattr(exc, "retryable", True) and not isinstance(exc, ParseError)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        results.append({"action": current, "status": "error", "error": error})
        fields["last_error"] = error
        retries = RetryPolicy.from_settings("CASTIEL_WEBHOOK")
        if retryable and not retries.exhausted(event.attempts):
            delay = retries.delay(event.attempts, retry_after=getattr(exc, "retry_after", None))
            fields.update(
                status=WebhookEvent.Status.RETRYING,
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
            )
            log.warning("webhooks.process_retry", event_id=str(event.pk), error=error, delay=delay)
        else:
            fields.update(status=WebhookEvent.Status.FAILED, next_attempt_at=None)
            log.error("webhooks.process_failed", event_id=str(event.pk), error=error)
    fields.update(
        actions=results,
        lease_expires_at=None,
        processing_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    # Only the holder of this lease may write the result (a worker that outlived its lease
    # must not overwrite the work of the one that took over).
    processing = WebhookEvent.objects.filter(pk=event.pk, status=WebhookEvent.Status.PROCESSING)
    fenced_update(processing, lease, fields, owner=LEASE_HOLDER)
    metrics.PROCESSED.labels(parser_slug, fields["status"]).inc()
    log.info("webhooks.processed", event_id=str(event.pk), status=fields["status"])
    return fields["status"]


class ReplayRefused(Exception):
    pass


def event_replay(*, event: WebhookEvent) -> WebhookEvent:
    """Process a stored, already-verified event again (no signature or timestamp check)."""
    if event.outcome != WebhookEvent.Outcome.ACCEPTED:
        raise ReplayRefused("only accepted events can be replayed (this one was not stored)")
    now = timezone.now()
    updated = (
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(status=WebhookEvent.Status.PROCESSING, lease_expires_at__gte=now)
        .update(
            status=WebhookEvent.Status.RECEIVED,
            attempts=0,
            next_attempt_at=None,
            lease_expires_at=None,
            actions=[],
            last_error="",
            replay_count=F("replay_count") + 1,
            last_replayed_at=now,
        )
    )
    if not updated:
        raise ReplayRefused("the event is being processed right now; try again shortly")
    event.refresh_from_db()
    event_enqueue(event.pk)
    log.info("webhooks.replayed", event_id=str(event.pk), replay_count=event.replay_count)
    return event


# ---------------------------------------------------------------------------------------------
# Maintenance
# ---------------------------------------------------------------------------------------------
LOST_AFTER_SECONDS = 60


def events_requeue_due(*, limit: int = 500) -> int:
    """Queue events whose wake-up is due or was lost (retry due, stale received, dead lease)."""
    now = timezone.now()
    due = (
        Q(status=WebhookEvent.Status.RETRYING, next_attempt_at__lte=now)
        | Q(
            status=WebhookEvent.Status.RECEIVED,
            received_at__lt=now - timedelta(seconds=LOST_AFTER_SECONDS),
        )
        | Q(status=WebhookEvent.Status.PROCESSING, lease_expires_at__lt=now)
    )
    ids = list(
        WebhookEvent.objects.filter(
            due, outcome=WebhookEvent.Outcome.ACCEPTED, tenant__is_active=True
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        event_enqueue(event_id)
    if ids:
        log.info("webhooks.requeued", count=len(ids))
    return len(ids)


def events_purge(*, older_than_days: int | None = None, batch: int = 1000) -> int:
    """Delete audit rows past the retention (pending events are kept until they finish)."""
    days = settings.CASTIEL_WEBHOOK_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(
            WebhookEvent.objects.filter(received_at__lt=cutoff)
            .exclude(status__in=WebhookEvent.PENDING_STATUSES)
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        WebhookEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    if deleted:
        log.info("webhooks.purged", count=deleted, older_than_days=days)
    return deleted


def invalidate_registration(registration_id) -> None:
    lookup.invalidate(registration_id)
