"""Reading and writing a credential's secret document (JSON) in the configured store."""

from __future__ import annotations

import json

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from credentials.secrets import SecretStoreError, SecretVersion, secret_store


def secret_name_for(credential) -> str:
    return f"cred-{credential.pk.hex}"


def tags_for(credential) -> dict[str, str]:
    return {
        "tenant": str(credential.tenant_id),
        "integration": str(credential.integration_id),
        "credential": str(credential.pk),
        "type": credential.type,
    }


def read_document(credential) -> dict:
    """The current secret document of ``credential`` (latest version in the store).

    The latest version, not ``secret_version``: if a refresh stored new tokens and then
    failed before recording the version, the latest version still holds the newest (and,
    with rotating providers, the only valid) refresh token.
    """
    return json.loads(secret_store().get(credential.secret_name).value)


def write_document(credential, document: dict) -> SecretVersion:
    """Store ``document`` as a new version; a few quick retries (a rotated refresh token that
    cannot be stored is lost, so a blip in the store must not lose it)."""
    for attempt in Retrying(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2),
        retry=retry_if_exception_type(SecretStoreError),
        reraise=True,
    ):
        with attempt:
            return secret_store().put(
                credential.secret_name,
                json.dumps(document, separators=(",", ":")),
                tags=tags_for(credential),
            )
    raise AssertionError("unreachable")  # pragma: no cover
