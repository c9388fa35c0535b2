"""The refresh's single-flight locks: an advisory Redis lock in front, then the database lock
that guarantees it — a ``SELECT … FOR UPDATE`` row lock with a bounded wait on PostgreSQL, a
lease taken with a conditional ``UPDATE`` where row locks do not exist (SQLite).
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from castiel.db.leases import new_token
from castiel.observability.logging import get_logger
from credentials.errors import RefreshBusyError
from credentials.models import Credential
from credentials.refresh_statements import load_credential, release_lease, take_lease

log = get_logger(__name__)


@contextmanager
def redis_lock(credential_id):
    """A Redis lock in front of the DB lock: waiters block in Redis, not on DB rows.

    Advisory only: if Redis is down or the wait times out we still take the DB lock, which
    is what makes the refresh single-flight.
    """
    if not settings.REDIS_URL:
        yield
        return
    from django_redis import get_redis_connection
    from redis.exceptions import LockError, RedisError

    lock = None
    try:
        lock = get_redis_connection("default").lock(
            f"{settings.CACHE_KEY_PREFIX}:credential-refresh:{credential_id}",
            timeout=settings.CASTIEL_TOKEN_REFRESH_LOCK_SECONDS,
            blocking_timeout=settings.CASTIEL_TOKEN_REFRESH_LOCK_SECONDS,
            thread_local=False,
        )
        if not lock.acquire():
            lock = None
    except RedisError:
        log.warning("credential.redis_lock_unavailable", cred=str(credential_id))
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            try:
                lock.release()
            except (LockError, RedisError):
                pass  # expired meanwhile: the DB lock covered us


@contextmanager
def db_lock(credential_id):
    if connection.features.has_select_for_update:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # Bounded wait for the row lock (SET does not take bind parameters).
                    cursor.execute(
                        "SELECT set_config('lock_timeout', %s, true)",
                        [f"{int(settings.CASTIEL_TOKEN_REFRESH_LOCK_SECONDS * 1000)}ms"],
                    )
            try:
                credential = load_credential(credential_id, for_update=True)
            except OperationalError as exc:
                raise RefreshBusyError(
                    f"credential {credential_id} is being refreshed elsewhere for too long"
                ) from exc
            yield credential
        return
    with _lease(credential_id) as lease:
        credential = load_credential(credential_id)
        credential._refresh_lease = lease
        yield credential


@dataclass
class _Lease:
    owner: str
    released: bool = False


@contextmanager
def _lease(credential_id):
    """Row lease by conditional UPDATE, for databases where SELECT FOR UPDATE is a no-op."""
    lease = _Lease(owner=new_token())
    owner = lease.owner
    ttl = timedelta(seconds=settings.CASTIEL_TOKEN_REFRESH_LOCK_SECONDS)
    deadline = time.monotonic() + settings.CASTIEL_TOKEN_REFRESH_LOCK_SECONDS
    while True:
        now = timezone.now()
        if take_lease(credential_id, owner=owner, until=now + ttl, now=now):
            break
        if not Credential.objects.filter(pk=credential_id).exists():
            raise Credential.DoesNotExist(f"credential {credential_id} does not exist")
        if time.monotonic() > deadline:
            raise RefreshBusyError(
                f"credential {credential_id} is being refreshed elsewhere for too long"
            )
        time.sleep(random.uniform(0.02, 0.1))  # noqa: S311 - jitter
    try:
        yield lease
    finally:
        if not lease.released:
            release_lease(credential_id, owner=owner)
