"""The proactive side: refresh what expires soon, flag what cannot renew itself."""

from __future__ import annotations

import contextvars
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from castiel.observability.logging import get_logger
from credentials.models import Credential, CredentialStatus, TokenRefreshAudit
from credentials.refresh import credential_refresh
from credentials.types import TYPES

log = get_logger(__name__)

REFRESHABLE = [slug for slug, kind in TYPES.items() if kind.refreshable]


def due_for_refresh(*, now=None, lookahead: timedelta | None = None):
    """Refreshable credentials whose token expires within the look-ahead, not backing off."""
    now = now or timezone.now()
    lookahead = lookahead or timedelta(minutes=settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES)
    return (
        Credential.objects.filter(
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
    ids = list(
        due_for_refresh().values_list("pk", flat=True)[
            : limit or settings.CASTIEL_TOKEN_REFRESH_BATCH
        ]
    )
    outcomes: Counter[str] = Counter()
    if concurrency <= 1 or len(ids) <= 1:
        for credential_id in ids:
            outcomes[_refresh_one(credential_id, close=False)] += 1
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="refresh") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, _refresh_one, credential_id)
                for credential_id in ids
            ]
            for future in futures:
                outcomes[future.result()] += 1
    flagged = mark_expiring()
    summary = {"due": len(ids), **outcomes, "flagged_expiring": flagged}
    log.info("credentials.refresh_due", **summary)
    return summary


def _refresh_one(credential_id, *, close: bool = True) -> str:
    try:
        return credential_refresh(
            credential_id=credential_id, trigger=TokenRefreshAudit.Trigger.SCHEDULE
        ).outcome
    except Credential.DoesNotExist:
        return "gone"
    except Exception:  # one broken credential must not stop the others (already audited)
        return TokenRefreshAudit.Outcome.ERROR
    finally:
        if close:
            connections.close_all()  # pool threads must not leak connections


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
    return Credential.objects.filter(pk=credential.pk, status=CredentialStatus.ACTIVE).update(
        status=CredentialStatus.EXPIRING, status_reason=reason, updated_at=timezone.now()
    )
