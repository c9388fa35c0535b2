"""The secret-store contract shared by every backend (one test suite runs against all)."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

# Key Vault's rule (^[0-9a-zA-Z-]+$, ≤127 chars) is the strictest, so every store uses it:
# a name that works in the DB store works in production too.
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


class SecretStoreError(Exception):
    """Base error; messages name secrets, never contain their values."""


class SecretNotFoundError(SecretStoreError):
    pass


class SecretExpiredError(SecretStoreError):
    pass


class SecretNotYetValidError(SecretStoreError):
    pass


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    created_at: datetime | None = None
    expires_on: datetime | None = None
    not_before: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretValue:
    value: str
    meta: SecretVersion

    @property
    def version(self) -> str:
        return self.meta.version

    def __repr__(self) -> str:  # never show the value in tracebacks or logs
        return f"SecretValue(name={self.meta.name!r}, version={self.meta.version!r})"

    __str__ = __repr__


def validate_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise SecretStoreError(
            f"invalid secret name {name!r}: use 1-127 letters, digits and dashes"
        )
    return name


HEALTH_PROBE_NAME = "castiel-healthz-probe"


def check_validity(meta: SecretVersion, *, now: datetime | None = None) -> None:
    """Stores such as Key Vault do not enforce these dates on read; Castiel does."""
    now = now or timezone.now()
    if meta.expires_on is not None and now >= meta.expires_on:
        raise SecretExpiredError(f"secret {meta.name} version {meta.version} has expired")
    if meta.not_before is not None and now < meta.not_before:
        raise SecretNotYetValidError(f"secret {meta.name} version {meta.version} is not valid yet")


class SecretStore(abc.ABC):
    """Versioned secrets: every ``put`` creates a new version; old versions stay readable."""

    @classmethod
    @abc.abstractmethod
    def from_settings(cls) -> SecretStore: ...

    @abc.abstractmethod
    def put(
        self,
        name: str,
        value: str,
        *,
        tags: dict[str, str] | None = None,
        expires_on: datetime | None = None,
        not_before: datetime | None = None,
    ) -> SecretVersion:
        """Store ``value`` as the new current version of ``name``."""

    @abc.abstractmethod
    def get(self, name: str, version: str | None = None) -> SecretValue:
        """The given version (default: current); raises if missing, expired or not yet valid."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Delete every version of ``name`` (idempotent)."""

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[SecretVersion]:
        """All versions of ``name``, oldest first."""

    def health(self) -> str:
        """For ``/healthz``: raise if the store cannot serve reads, else a short description.

        The default reads a name that does not exist: reaching the store and being allowed
        to read is what matters (a missing name is the expected answer).
        """
        try:
            self.get(HEALTH_PROBE_NAME)
        except SecretNotFoundError:
            pass
        return type(self).__name__
