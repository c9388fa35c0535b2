"""The proactive side: refresh what expires soon, flag what cannot renew itself."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from castiel import events
from castiel.observability.logging import get_logger
from credentials.models import Credential, CredentialStatus, TokenRefreshAudit
from credentials.refresh import credential_refresh, notify
from credentials.types import TYPES

log = get_logger(__name__)

REFRESHABLE = [slug for slug, kind in TYPES.items() if kind.refreshable]


def due_for_refresh(*, now=None, lookahead: timedelta | None = None):
    """Refreshable credentials whose token expires within the look-ahead, not backing off —
    of an active tenant and an enabled integration (a deactivated tenant's or a disabled
    integration's tokens are not renewed: nothing may use them)."""
    now = now or timezone.now()
    lookahead = lookahead or timedelta(minutes=settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES)
    return (
        Credential.objects.filter(
            tenant__is_active=True,
            integration__enabled=True,
            type__in=REFRESHABLE,
            status__in=[CredentialStatus.ACTIVE, CredentialStatus.EXPIRING, CredentialStatus.ERROR],
            expires_at__isnull=False,
            expires_at__lte=now + lookahead,
        )
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .filter(Q(renew_after__isnull=True) | Q(renew_after__lte=now) | Q(expires_at__lte=now))
        .order_by("expires_at")
    )


def refresh_due(*, concurrency: int | None = None, limit: int | None = None) -> dict:
    """Refresh every due credential (each single-flight); returns counts by outcome."""
    concurrency = concurrency or settings.CASTIEL_TOKEN_REFRESH_CONCURRENCY
    batch = limit or settings.CASTIEL_TOKEN_REFRESH_BATCH
    ids = list(due_for_refresh().values_list("pk", flat=True)[:batch])
    outcomes: Counter[str] = Counter()
    if concurrency <= 1 or len(ids) <= 1:
        for credential_id in ids:
            outcomes[_refresh_one(credential_id)] += 1
    else:
        _refresh_in_threads(ids, min(concurrency, len(ids)), outcomes)
    flagged = mark_expiring()
    summary = {"due": len(ids), **outcomes, "flagged_expiring": flagged}
    log.info("credentials.refresh_due", **summary)
    return summary


def _refresh_in_threads(ids: list, threads: int, outcomes: Counter) -> None:
    """``threads`` long-lived workers: each keeps its database connection for the whole run
    (a connection per refresh would cost more than the refresh on PostgreSQL)."""
    pending = queue.SimpleQueue()
    for credential_id in ids:
        pending.put(credential_id)
    lock = threading.Lock()

    def worker():
        try:
            while True:
                try:
                    credential_id = pending.get_nowait()
                except queue.Empty:
                    return
                outcome = _refresh_one(credential_id)
                with lock:
                    outcomes[outcome] += 1
        finally:
            connections.close_all()  # this thread's connections

    pool = [
        threading.Thread(target=contextvars.copy_context().run, args=(worker,), name=f"refresh-{i}")
        for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _refresh_one(credential_id) -> str:
    try:
        return str(
            credential_refresh(
                credential_id=credential_id, trigger=TokenRefreshAudit.Trigger.SCHEDULE
            ).outcome
        )
    except Credential.DoesNotExist:
        return "gone"
    except Exception:  # one broken credential must not stop the others (already audited)
        return str(TokenRefreshAudit.Outcome.ERROR)


def mark_expiring(*, now=None) -> int:
    """Credentials a human must renew soon become ``expiring`` (still used until then)."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.CASTIEL_CREDENTIAL_EXPIRY_WARNING_DAYS)
    flagged = 0
    static = Credential.objects.filter(
        status=CredentialStatus.ACTIVE, expires_at__lte=horizon
    ).exclude(type__in=REFRESHABLE)
    for credential in static:
        verb = "expired" if credential.expires_at <= now else "expires"
        flagged += _flag(credential, f"{verb} at {credential.expires_at:%Y-%m-%d %H:%M} UTC")
    refresh_ending = Credential.objects.filter(
        status=CredentialStatus.ACTIVE, type__in=REFRESHABLE, refresh_expires_at__lte=horizon
    )
    for credential in refresh_ending:
        flagged += _flag(
            credential,
            f"the refresh token ends at {credential.refresh_expires_at:%Y-%m-%d %H:%M} UTC; "
            "connect again before then",
        )
    return flagged


def _flag(credential, reason: str) -> int:
    flagged = Credential.objects.filter(pk=credential.pk, status=CredentialStatus.ACTIVE).update(
        status=CredentialStatus.EXPIRING, status_reason=reason, updated_at=timezone.now()
    )
    if flagged:
        notify(credential, events.Kind.CREDENTIAL_EXPIRING, f"The credential {reason}.")
    return flagged
