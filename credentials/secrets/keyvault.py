"""Azure Key Vault store: ``azure-keyvault-secrets`` ``SecretClient``.

* Names: Castiel's secret names already follow Key Vault's rule (``^[0-9a-zA-Z-]+$``, see
  ``credentials.secrets.base``); ``AZURE_KEYVAULT_SECRET_PREFIX`` is prepended so several
  sites can share a vault.
* Every ``put`` is a ``set_secret``: Key Vault creates a new version each time. Tags carry
  the tenant / integration / credential ids, plus an ordering stamp (Key Vault versions are
  opaque ids and ``created_on`` has one-second resolution, so two writes in the same second
  could not be ordered otherwise). The stamp is removed from the tags callers see.
* ``expires_on`` / ``not_before`` are stored as attributes, but Key Vault does not enforce
  them on reads: Castiel checks them (``check_validity``).
* Soft delete is always on: writing a name that was deleted but not purged answers 409.
  ``AZURE_KEYVAULT_DELETED_NAMES=purge`` (default) purges the deleted name first — falling
  back to recovering it when purge protection forbids purging — and ``recover`` recovers it;
  the write then becomes the newest version.
* Credentials: ``AZURE_KEYVAULT_CREDENTIAL`` picks the azure-identity credential
  (:func:`credential_from_settings`): ``default`` is ``DefaultAzureCredential``'s chain; the
  others pin one credential, so a production host never waits on probes of the rest (the
  chain tries the IMDS endpoint, the CLI …) and cannot silently authenticate as another
  identity. A pinned credential whose variables are missing fails at start-up with the
  variables' names (never their values). A credential object can also be passed in.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from credentials.secrets.base import (
    SecretNotFoundError,
    SecretStore,
    SecretStoreError,
    SecretValue,
    SecretVersion,
    check_validity,
    validate_name,
)

ORDER_TAG = "castiel-seq"
MAX_NAME = 127


# azure-identity's own environment variables each pinned credential needs (read by the SDK;
# listed here only to name the missing ones in a start-up error).
_REQUIRED_ENV = {
    "environment": (
        ("AZURE_TENANT_ID",),
        ("AZURE_CLIENT_ID",),
        ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"),
    ),
    "workload_identity": (
        ("AZURE_TENANT_ID",),
        ("AZURE_CLIENT_ID",),
        ("AZURE_FEDERATED_TOKEN_FILE",),
    ),
}


def credential_from_settings(**kwargs):
    """The azure-identity credential ``AZURE_KEYVAULT_CREDENTIAL`` names.

    ``kwargs`` go to the credential (e.g. ``disable_instance_discovery`` for a private
    cloud's authority, transport options).
    """
    from azure import identity

    kind = settings.AZURE_KEYVAULT_CREDENTIAL
    missing = [
        " or ".join(names)
        for names in _REQUIRED_ENV.get(kind, ())
        if not any(os.environ.get(name) for name in names)
    ]
    if missing:
        raise ImproperlyConfigured(
            f"AZURE_KEYVAULT_CREDENTIAL={kind} needs {', '.join(missing)} in the environment"
        )
    if kind == "environment":
        return identity.EnvironmentCredential(**kwargs)
    if kind == "managed_identity":  # user-assigned when AZURE_CLIENT_ID names one
        return identity.ManagedIdentityCredential(
            client_id=os.environ.get("AZURE_CLIENT_ID") or None, **kwargs
        )
    if kind == "workload_identity":
        return identity.WorkloadIdentityCredential(**kwargs)
    if kind == "azure_cli":
        return identity.AzureCliCredential(**kwargs)
    return identity.DefaultAzureCredential(**kwargs)


class KeyVaultStore(SecretStore):
    def __init__(self, client, *, prefix: str = "", deleted_names: str = "purge"):
        self.client = client
        self.prefix = prefix
        if deleted_names not in ("purge", "recover"):
            raise ImproperlyConfigured("deleted_names must be 'purge' or 'recover'")
        self.deleted_names = deleted_names

    @classmethod
    def from_settings(cls) -> KeyVaultStore:
        if not settings.AZURE_KEYVAULT_URL:
            raise ImproperlyConfigured(
                "CASTIEL_SECRET_STORE=azure_keyvault needs AZURE_KEYVAULT_URL "
                "(https://<vault-name>.vault.azure.net)"
            )
        from azure.keyvault.secrets import SecretClient

        client = SecretClient(
            vault_url=settings.AZURE_KEYVAULT_URL, credential=credential_from_settings()
        )
        return cls(
            client,
            prefix=settings.AZURE_KEYVAULT_SECRET_PREFIX,
            deleted_names=settings.AZURE_KEYVAULT_DELETED_NAMES,
        )

    # -- contract ----------------------------------------------------------------------------

    def put(
        self,
        name: str,
        value: str,
        *,
        tags: dict[str, str] | None = None,
        expires_on: datetime | None = None,
        not_before: datetime | None = None,
    ) -> SecretVersion:
        from azure.core.exceptions import ResourceExistsError

        vault_name = self._vault_name(name)
        all_tags = {**(tags or {}), ORDER_TAG: f"{time.time_ns():020d}"}
        kwargs = {"tags": all_tags, "expires_on": expires_on, "not_before": not_before}
        with _errors(name):
            try:
                secret = self.client.set_secret(vault_name, value, **kwargs)
            except ResourceExistsError:
                self._free_deleted_name(vault_name)
                secret = self._set_after_release(vault_name, value, kwargs)
        return self._meta(name, secret.properties)

    def get(self, name: str, version: str | None = None) -> SecretValue:
        from azure.core.exceptions import ResourceNotFoundError

        vault_name = self._vault_name(name)
        with _errors(name):
            try:
                secret = self.client.get_secret(vault_name, version)
            except ResourceNotFoundError:
                raise SecretNotFoundError(
                    f"secret {name} (version {version or 'current'}) not found"
                ) from None
        meta = self._meta(name, secret.properties)
        check_validity(meta)
        if secret.value is None:
            raise SecretStoreError(f"secret {name} version {meta.version} has no value")
        return SecretValue(value=secret.value, meta=meta)

    def delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        vault_name = self._vault_name(name)
        with _errors(name):
            try:
                self.client.begin_delete_secret(vault_name).wait()
            except ResourceNotFoundError:
                return  # idempotent

    def list_versions(self, name: str) -> list[SecretVersion]:
        from azure.core.exceptions import ResourceNotFoundError

        vault_name = self._vault_name(name)
        with _errors(name):
            try:
                items = list(self.client.list_properties_of_secret_versions(vault_name))
            except ResourceNotFoundError:
                return []
        versions = [self._meta(name, props) for props in items]
        order = {
            v.version: (props.tags or {}).get(ORDER_TAG, "")
            for v, props in zip(versions, items, strict=True)
        }
        return sorted(versions, key=lambda v: (order[v.version], v.created_at or datetime.min))

    # -- internals ---------------------------------------------------------------------------

    def _vault_name(self, name: str) -> str:
        validate_name(name)
        full = f"{self.prefix}{name}"
        if len(full) > MAX_NAME:
            raise SecretStoreError(
                f"invalid secret name {name!r}: with the prefix it exceeds {MAX_NAME} characters"
            )
        return full

    def _free_deleted_name(self, vault_name: str) -> None:
        """The name is soft-deleted: purge it (or recover it) so it can be written again."""
        from azure.core.exceptions import HttpResponseError

        if self.deleted_names == "purge":
            try:
                self.client.purge_deleted_secret(vault_name)
                return
            except HttpResponseError as exc:
                if exc.status_code not in (403, 409):  # purge protection / not allowed
                    raise
        self.client.begin_recover_deleted_secret(vault_name).wait()

    def _set_after_release(self, vault_name: str, value: str, kwargs: dict):
        """Purging or recovering completes asynchronously in Key Vault: retry the write briefly."""
        from azure.core.exceptions import ResourceExistsError

        delay = 0.2
        for _attempt in range(8):
            try:
                return self.client.set_secret(vault_name, value, **kwargs)
            except ResourceExistsError:
                time.sleep(delay)
                delay = min(delay * 2, 5)
        return self.client.set_secret(vault_name, value, **kwargs)

    def _meta(self, name: str, props) -> SecretVersion:
        tags = {k: v for k, v in (props.tags or {}).items() if k != ORDER_TAG}
        return SecretVersion(
            name=name,
            version=props.version,
            created_at=props.created_on,
            expires_on=props.expires_on,
            not_before=props.not_before,
            tags=tags,
        )


class _errors:
    """Azure SDK errors → SecretStoreError with a message that never holds the value."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, SecretStoreError):
            return False
        from azure.core.exceptions import AzureError

        if isinstance(exc, AzureError):
            status = getattr(exc, "status_code", None)
            detail = f"HTTP {status}" if status else exc.__class__.__name__
            raise SecretStoreError(f"Key Vault refused secret {self.name}: {detail}") from None
        return False
