"""Processing: claim a stored event, parse it with its provider's parser, run the routed
follow-up actions, retry with backoff; replay; and the sweeper and retention of events."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q
from django.utils import timezone

from castiel.db.leases import claim_row, fenced_update
from castiel.events import Kind, emit
from castiel.http.retry import RetryPolicy
from castiel.observability import tracing
from castiel.observability.logging import get_logger
from castiel.tenancy.models import active_tenant_ids
from integrations.webhook_events import Delivery, ParseError, get_parser
from webhooks import metrics, routing
from webhooks.models import WebhookEvent
from webhooks.receipt import event_enqueue
from webhooks.schemes import get_scheme

log = get_logger(__name__)

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
    tracing.set_span_attributes(
        tenant=event.tenant_id, registration=registration.pk, event=event.pk, provider=parser_slug
    )
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
        normalised = get_parser(parser_slug)(delivery)
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
                with tracing.span_of(_action_span, name, context) as traced:
                    outcome = routing.run_action(name, ev, context)
                    if traced is not None:
                        tracing.set_span_attributes(outcome="ok")
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
    tracing.set_span_attributes(outcome=fields["status"], attempt=event.attempts)
    written = fenced_update(processing, lease, fields, owner=LEASE_HOLDER)
    if written:
        _notify(event, registration, fields["status"], fields["last_error"])
        if fields["status"] not in WebhookEvent.PENDING_STATUSES:
            # For the tenant's own application (sent only where it opted in).
            emit(
                Kind.WEBHOOK_RECEIVED,
                subject=("webhookregistration", str(registration.pk), registration.name),
                tenant=event.tenant_id,
                integration=registration.integration_id,
                details={"webhook_event_id": str(event.pk), "status": fields["status"]},
            )
    metrics.PROCESSED.labels(parser_slug, fields["status"]).inc()
    log.info("webhooks.processed", event_id=str(event.pk), status=fields["status"])
    return fields["status"]


def _action_span(name: str, context: routing.ActionContext) -> tuple[str, dict]:
    """The span of one follow-up action (tracing on only)."""
    return f"webhook.action {name}", {
        "tenant": context.tenant_id,
        "integration": context.integration_id,
        "registration": context.registration_id,
        "event": context.webhook_event_id,
    }


FAILING_KEY = "webhooks:failing:{}"


def _notify(event, registration, status: str, error: str) -> None:
    """A failed event opens (or counts into) the registration's incident; the next processed
    one resolves it. Transitions only: a cache flag remembers a failing registration, so a
    healthy one costs one cache read per event."""
    key = FAILING_KEY.format(registration.pk)
    subject = ("webhookregistration", str(registration.pk), registration.name)
    ids = {"tenant": event.tenant_id, "integration": registration.integration_id}
    if status == WebhookEvent.Status.FAILED:
        emit(Kind.WEBHOOK_PROCESSING_FAILING, subject=subject, message=error[:500], **ids)
        _cache_call(cache.set, key, 1, timeout=None)
    elif status == WebhookEvent.Status.PROCESSED and _cache_call(cache.get, key):
        emit(Kind.WEBHOOK_PROCESSING_RECOVERED, subject=subject, **ids)
        _cache_call(cache.delete, key)


def _cache_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception:  # a cache outage only costs a notification, never the processing
        log.warning("webhooks.notify_cache_unavailable", exc_info=True)
        return None


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
