"""Registration lookup for the receiver: cached (Redis in production), DB as the fallback.

The receiver needs a handful of fields on every delivery; they are cached as a plain dict
for ``CASTIEL_WEBHOOK_REGISTRATION_CACHE_SECONDS`` (5 minutes). Every change to a
registration (or to its tenant's active flag) deletes the entry, immediately and again after
the transaction commits, so a concurrent read cannot re-cache the old row for long (a
per-process copy lives at most CASTIEL_WEBHOOK_LOCAL_CACHE_SECONDS, see below). Unknown
ids are cached briefly as "missing" so scanners do not reach the database on every request.
A cache that is down behaves as a miss; a database that is down raises (the receiver
answers 503).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from castiel.observability.logging import get_logger

log = get_logger(__name__)

MISSING = "missing"
MISSING_TTL = 60


@dataclass(frozen=True)
class RegistrationSnapshot:
    id: str
    tenant_id: str
    tenant_active: bool
    integration_id: str | None
    scheme: str
    scheme_config: dict
    secret_name: str
    secret_version: str
    previous_secret_version: str
    previous_secret_expires_at: float | None
    timestamp_tolerance: int
    dedupe_rule: tuple[str, ...]
    rate_limit_per_minute: int | None
    is_active: bool


def cache_key(registration_id) -> str:
    return f"webhooks:registration:{registration_id}"


def snapshot(registration) -> RegistrationSnapshot:
    expires = registration.previous_secret_expires_at
    return RegistrationSnapshot(
        id=str(registration.pk),
        tenant_id=str(registration.tenant_id),
        tenant_active=registration.tenant.is_active,
        integration_id=str(registration.integration_id) if registration.integration_id else None,
        scheme=registration.scheme,
        scheme_config=dict(registration.scheme_config or {}),
        secret_name=registration.secret_name,
        secret_version=registration.secret_version,
        previous_secret_version=registration.previous_secret_version,
        previous_secret_expires_at=expires.timestamp() if expires else None,
        timestamp_tolerance=registration.timestamp_tolerance,
        dedupe_rule=tuple(registration.dedupe_rule or ()),
        rate_limit_per_minute=registration.rate_limit_per_minute,
        is_active=registration.is_active,
    )


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # a broken cache must degrade to the database, not fail the request
        log.warning("webhooks.registration_cache_unavailable", exc_info=True)
        return None


def _cache_set(key: str, value, ttl: int) -> None:
    try:
        cache.set(key, value, ttl)
    except Exception:
        log.warning("webhooks.registration_cache_unavailable", exc_info=True)


# A tiny per-process layer in front of the shared cache saves a Redis round trip per
# delivery. It is bounded to CASTIEL_WEBHOOK_LOCAL_CACHE_SECONDS (default 2 s): that is how
# long another process may keep using a registration after it changed (invalidation clears
# this process's copy at once). 0 turns it off.
_local: dict[str, tuple[float, RegistrationSnapshot | None]] = {}
_LOCAL_MAX = 10_000


def _local_get(key: str):
    entry = _local.get(key)
    if entry is None:
        return False, None
    expires, value = entry
    if time.monotonic() >= expires:
        _local.pop(key, None)
        return False, None
    return True, value


def _local_set(key: str, value: RegistrationSnapshot | None) -> None:
    ttl = settings.CASTIEL_WEBHOOK_LOCAL_CACHE_SECONDS
    if ttl <= 0:
        return
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (time.monotonic() + ttl, value)


def get_registration(registration_id: uuid.UUID | str) -> RegistrationSnapshot | None:
    """The registration's snapshot, or None when there is none (DatabaseError propagates)."""
    from webhooks.models import WebhookRegistration

    key = cache_key(registration_id)
    hit, value = _local_get(key)
    if hit:
        return value
    cached = _cache_get(key)
    if cached == MISSING:
        _local_set(key, None)
        return None
    if isinstance(cached, dict):
        try:
            found = RegistrationSnapshot(**cached)
        except TypeError:  # an entry written by an older version of this class
            found = None
        if found is not None:
            _local_set(key, found)
            return found
    row = WebhookRegistration.objects.select_related("tenant").filter(pk=registration_id).first()
    if row is None:
        _cache_set(key, MISSING, MISSING_TTL)
        return None
    found = snapshot(row)
    _cache_set(key, asdict(found), settings.CASTIEL_WEBHOOK_REGISTRATION_CACHE_SECONDS)
    _local_set(key, found)
    return found


def invalidate(registration_id) -> None:
    key = cache_key(registration_id)

    def delete():
        _local.pop(key, None)
        try:
            cache.delete(key)
        except Exception:
            log.warning("webhooks.registration_cache_unavailable", exc_info=True)

    delete()
    transaction.on_commit(delete)
