"""Secret stores: where credential and signing-secret values live (never in clear in the DB).

``secret_store()`` returns the configured store (``CASTIEL_SECRET_STORE``): ``db`` — the
encrypted database store (default) — or ``azure_keyvault``.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from credentials.secrets.base import (
    SecretExpiredError,
    SecretNotFoundError,
    SecretNotYetValidError,
    SecretStore,
    SecretStoreError,
    SecretValue,
    SecretVersion,
)

BACKENDS = {
    "db": "credentials.secrets.db.EncryptedDatabaseStore",
    "azure_keyvault": "credentials.secrets.keyvault.KeyVaultStore",
}


@lru_cache(maxsize=1)
def secret_store() -> SecretStore:
    name = settings.CASTIEL_SECRET_STORE
    try:
        path = BACKENDS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"CASTIEL_SECRET_STORE must be one of {sorted(BACKENDS)}, not {name!r}"
        ) from None
    return import_string(path).from_settings()


__all__ = [
    "SecretExpiredError",
    "SecretNotFoundError",
    "SecretNotYetValidError",
    "SecretStore",
    "SecretStoreError",
    "SecretValue",
    "SecretVersion",
    "secret_store",
]
