"""When a token is due: the on-demand leeway, the schedule's look-ahead, half-life."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def needs_new_token(credential, *, within: timedelta | None = None) -> bool:
    """A refreshable credential with no access token yet, one already expired, or one
    expiring within ``within`` (default: the on-demand leeway) and past half its lifetime."""
    if not credential.kind.refreshable:
        return False
    if "access_token" not in (credential.secret_fields or []):
        return True
    if credential.expires_at is None:
        return False  # the provider did not say: renewed when it answers 401
    now = timezone.now()
    if credential.expires_at <= now:
        return True
    if within is None:
        within = timedelta(seconds=settings.CASTIEL_TOKEN_REFRESH_LEEWAY_SECONDS)
    threshold = credential.expires_at - within
    if credential.renew_after is not None and credential.renew_after > threshold:
        threshold = credential.renew_after
    return now >= threshold


def renew_after_for(expires_at, *, now=None):
    if expires_at is None:
        return None
    now = now or timezone.now()
    return now + (expires_at - now) / 2
