"""Encrypted database store: Fernet tokens in ``StoredSecret`` rows.

Keys come from ``CASTIEL_SECRET_KEYS`` (comma-separated Fernet keys, newest first) through a
``MultiFernet``: encryption uses the newest key, decryption tries them all, so rotation is
"prepend a new key, run ``manage.py rotate_secret_keys``, then drop the old key". The
embedded profile generates one key into the data folder on first use.
"""

from __future__ import annotations

import random
import time
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from credentials.secrets.base import (
    SecretNotFoundError,
    SecretStore,
    SecretStoreError,
    SecretValue,
    SecretVersion,
    check_validity,
    validate_name,
)


def load_keys() -> list[str]:
    keys = list(settings.CASTIEL_SECRET_KEYS)
    if keys:
        return keys
    if settings.PRODUCTION:
        raise ImproperlyConfigured(
            "CASTIEL_SECRET_KEYS must be set in production when CASTIEL_SECRET_STORE=db"
        )
    path = settings.DATA_DIR / "secret_keys"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode() + "\n")
        path.chmod(0o600)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class EncryptedDatabaseStore(SecretStore):
    def __init__(self, keys: list[str]):
        if not keys:
            raise ImproperlyConfigured("the encrypted secret store needs at least one key")
        self.key_count = len(keys)
        try:
            self.fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError:
            raise ImproperlyConfigured(
                "CASTIEL_SECRET_KEYS holds an invalid Fernet key (32 url-safe base64 bytes)"
            ) from None

    @classmethod
    def from_settings(cls) -> EncryptedDatabaseStore:
        return cls(load_keys())

    def put(
        self,
        name: str,
        value: str,
        *,
        tags: dict[str, str] | None = None,
        expires_on: datetime | None = None,
        not_before: datetime | None = None,
    ) -> SecretVersion:
        from credentials.secrets.db_statements import insert_next_version

        validate_name(name)
        token = self.fernet.encrypt(value.encode()).decode()
        # Version numbers come from max+1 under a unique constraint: a writer that loses the
        # race retries with the next number (rare: refreshes of one secret are single-flight).
        for attempt in range(30):
            try:
                with transaction.atomic():  # a savepoint when the caller has a transaction
                    row = insert_next_version(
                        name, token, tags=tags, expires_on=expires_on, not_before=not_before
                    )
                return self._meta(row)
            except IntegrityError:  # a concurrent put took that version number: try the next
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
        raise SecretStoreError(f"could not allocate a new version of secret {name}")

    def get(self, name: str, version: str | None = None) -> SecretValue:
        from credentials.secrets.db_statements import read_row

        if version is not None and not str(version).isdigit():
            raise SecretNotFoundError(f"secret {name} has no version {version}")
        row = read_row(name, None if version is None else int(version))
        if row is None:
            raise SecretNotFoundError(f"secret {name} (version {version or 'current'}) not found")
        meta = self._meta(row)
        check_validity(meta)
        try:
            value = self.fernet.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretStoreError(
                f"secret {name} version {row.version} cannot be decrypted with the configured keys"
            ) from None
        return SecretValue(value=value, meta=meta)

    def delete(self, name: str) -> None:
        from credentials.models import StoredSecret

        StoredSecret.objects.filter(name=name).delete()

    def health(self) -> str:
        """The newest stored secret must decrypt with the configured keys: a key dropped too
        early in a rotation would otherwise only show when every credential starts failing."""
        from credentials.models import StoredSecret

        newest = StoredSecret.objects.order_by("-pk").only("name", "ciphertext").first()
        if newest is not None:
            try:
                self.fernet.decrypt(newest.ciphertext.encode())
            except InvalidToken:
                raise SecretStoreError(
                    f"secret {newest.name} cannot be decrypted with the configured keys "
                    "(CASTIEL_SECRET_KEYS)"
                ) from None
        return f"encrypted database, {self.key_count} key(s)"

    def list_versions(self, name: str) -> list[SecretVersion]:
        from credentials.models import StoredSecret

        return [self._meta(r) for r in StoredSecret.objects.filter(name=name).order_by("version")]

    def rotate(self, *, batch_size: int = 500) -> int:
        """Re-encrypt every stored version under the newest key; returns rows rewritten."""
        from credentials.models import StoredSecret

        rewritten = 0
        last_pk = 0
        while True:
            batch = list(StoredSecret.objects.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                return rewritten
            with transaction.atomic():
                for row in batch:
                    row.ciphertext = self.fernet.rotate(row.ciphertext.encode()).decode()
                StoredSecret.objects.bulk_update(batch, ["ciphertext"])
            rewritten += len(batch)
            last_pk = batch[-1].pk

    @staticmethod
    def _meta(row) -> SecretVersion:
        return SecretVersion(
            name=row.name,
            version=str(row.version),
            created_at=row.created_at,
            expires_on=row.expires_on,
            not_before=row.not_before,
            tags=dict(row.tags or {}),
        )
