"""Signing secrets of registrations, kept in the secret store (never in the webhooks tables).

Each registration owns one secret name (``webhook-<registration id hex>``); every rotation
``put``s a new version and the registration keeps the current version and, until its expiry,
the previous one. Decrypted values are cached in process memory keyed by (name, version):
versions are immutable, so the cache can never serve a stale value, and the receiver does not
pay a secret-store read (a DB query or a Key Vault round trip) per delivery.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from credentials.secrets import SecretNotFoundError, SecretStoreError, secret_store
from webhooks.schemes.base import SigningKey

_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
_lock = threading.Lock()


class SecretsUnavailable(Exception):
    """The secret store could not be read (transient: answer 503, the provider retries)."""


def secret_name_for(registration_id) -> str:
    return f"webhook-{str(registration_id).replace('-', '')}"


def _load(name: str, version: str) -> str | None:
    with _lock:
        if (name, version) in _cache:
            _cache.move_to_end((name, version))
            return _cache[(name, version)]
    try:
        value = secret_store().get(name, version).value
    except SecretNotFoundError:
        return None
    except SecretStoreError as exc:
        raise SecretsUnavailable(str(exc)) from None
    with _lock:
        _cache[(name, version)] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def signing_keys(snapshot, *, now: float | None = None) -> list[SigningKey]:
    """The keys a delivery may be signed with right now (current first); [] = none set."""
    now = time.time() if now is None else now
    keys = []
    if snapshot.secret_version:
        value = _load(snapshot.secret_name, snapshot.secret_version)
        if value:
            keys.append(SigningKey(value, "current"))
    expires = snapshot.previous_secret_expires_at
    if snapshot.previous_secret_version and expires is not None and now < expires:
        value = _load(snapshot.secret_name, snapshot.previous_secret_version)
        if value:
            keys.append(SigningKey(value, "previous"))
    return keys


def store_secret(registration, value: str) -> str:
    """Store ``value`` as the new version of the registration's secret; returns the version."""
    version = secret_store().put(
        registration.secret_name,
        value,
        tags={"kind": "webhook-signing-secret", "registration": str(registration.pk)},
    )
    return version.version


def delete_secret(name: str) -> None:
    secret_store().delete(name)
    with _lock:
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
