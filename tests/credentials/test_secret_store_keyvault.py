"""The Key Vault store passes the secret-store contract through the real ``SecretClient``
(azure-keyvault-secrets 4.12) against a local HTTPS Key Vault fake (keyvault_fake.py), with a
certificate generated at test time and verified by the SDK."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.credentials import AccessToken
from azure.keyvault.secrets import SecretClient
from django.core.exceptions import ImproperlyConfigured

from credentials.secrets import SecretStoreError, secret_store
from credentials.secrets.keyvault import ORDER_TAG, KeyVaultStore
from tests.credentials.keyvault_fake import running_vault
from tests.credentials.secret_store_contract import SecretStoreContract

pytestmark = pytest.mark.embedded


class FakeAzureCredential:
    """What SecretClient needs from a credential: ``get_token`` → AccessToken."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("fake-entra-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def vault(tls):
    with running_vault(tls.server_context()) as fake:
        yield fake


def make_client(vault, tls) -> SecretClient:
    return SecretClient(
        vault_url=vault.url,
        credential=FakeAzureCredential(),
        verify_challenge_resource=False,  # the fake is not *.vault.azure.net
        connection_verify=tls.ca_path,
    )


@pytest.fixture
def store(vault, tls):
    # A fresh prefix per test: an empty store in a shared vault.
    return KeyVaultStore(make_client(vault, tls), prefix=f"t{uuid.uuid4().hex[:8]}-")


@pytest.fixture
def concurrent_ok():
    """The Key Vault store keeps nothing in the database."""


class TestKeyVaultStore(SecretStoreContract):
    def test_the_sdk_authenticates_after_the_bearer_challenge(self, tls):
        # A vault of its own: the SDK caches a vault's challenge for the process.
        with running_vault(tls.server_context()) as fresh:
            store = KeyVaultStore(make_client(fresh, tls))
            store.put("first", "v")
            assert [r[2] for r in fresh.requests[:2]] == [False, True]  # 401, then a token
            assert store.get("first").value == "v"  # the body was re-sent after the challenge

    def test_versions_are_ordered_and_the_ordering_tag_stays_internal(self, store):
        versions = [store.put("ordered", f"v{i}", tags={"tenant": "t"}).version for i in range(4)]
        listed = store.list_versions("ordered")
        assert [v.version for v in listed] == versions
        assert all(v.tags == {"tenant": "t"} for v in listed)
        assert ORDER_TAG not in store.get("ordered").meta.tags

    def test_a_deleted_name_is_purged_before_reuse(self, store, vault):
        store.put("purged", "old")
        store.delete("purged")
        store.put("purged", "new")
        assert [store.get("purged", v.version).value for v in store.list_versions("purged")] == [
            "new"
        ]
        assert f"{store.prefix}purged" not in vault.deleted

    def test_recover_mode_restores_the_deleted_versions_then_writes(self, vault, tls):
        store = KeyVaultStore(
            make_client(vault, tls), prefix=f"r{uuid.uuid4().hex[:8]}-", deleted_names="recover"
        )
        store.put("recovered", "old")
        store.delete("recovered")
        store.put("recovered", "new")
        assert store.get("recovered").value == "new"
        assert len(store.list_versions("recovered")) == 2

    def test_prefixed_names_must_still_fit(self, vault, tls):
        store = KeyVaultStore(make_client(vault, tls), prefix="p" * 100)
        with pytest.raises(SecretStoreError, match="exceeds 127"):
            store.put("x" * 30, "v")

    def test_vault_errors_are_store_errors_without_values(self, tls):
        client = SecretClient(
            vault_url="https://127.0.0.1:9",
            credential=FakeAzureCredential(),
            verify_challenge_resource=False,
            connection_verify=tls.ca_path,
            retry_total=0,
        )
        with pytest.raises(SecretStoreError) as info:
            KeyVaultStore(client).put("unreachable", "value-never-shown")
        assert "value-never-shown" not in str(info.value)


def test_settings_select_the_key_vault_store(settings):
    settings.CASTIEL_SECRET_STORE = "azure_keyvault"
    settings.AZURE_KEYVAULT_URL = "https://castiel-test.vault.azure.net"
    settings.AZURE_KEYVAULT_SECRET_PREFIX = "site1-"
    secret_store.cache_clear()
    try:
        store = secret_store()
        assert isinstance(store, KeyVaultStore)
        assert store.client.vault_url == "https://castiel-test.vault.azure.net"
        assert store.prefix == "site1-"
        settings.AZURE_KEYVAULT_URL = ""
        secret_store.cache_clear()
        with pytest.raises(ImproperlyConfigured, match="AZURE_KEYVAULT_URL"):
            secret_store()
    finally:
        secret_store.cache_clear()


@pytest.mark.django_db
def test_credentials_live_in_key_vault_when_configured(
    settings, monkeypatch, vault, tls, tenant, http_server, django_capture_on_commit_callbacks
):
    from credentials.clients import client_for
    from credentials.services import credential_create, credential_revoke
    from tests.factories import IntegrationFactory

    kv = KeyVaultStore(make_client(vault, tls), prefix=f"e{uuid.uuid4().hex[:8]}-")
    monkeypatch.setattr(KeyVaultStore, "from_settings", classmethod(lambda cls: kv))
    settings.CASTIEL_SECRET_STORE = "azure_keyvault"
    secret_store.cache_clear()
    try:
        http_server.route("GET", "/probe")(lambda r: (200, {}, {"ok": True}))
        integration = IntegrationFactory(tenant=tenant, config={"base_url": http_server.url})
        credential = credential_create(
            integration=integration, type="bearer_token", secret={"token": "kv-held-token"}
        )
        client_for(integration).get("/probe")
        assert http_server.requests[-1].headers["authorization"] == "Bearer kv-held-token"
        stored = vault.secrets[f"{kv.prefix}{credential.secret_name}"][-1]
        assert stored["tags"]["tenant"] == str(tenant.pk)
        assert stored["tags"]["integration"] == str(integration.pk)
        with django_capture_on_commit_callbacks(execute=True):
            credential_revoke(credential=credential)
        assert f"{kv.prefix}{credential.secret_name}" in vault.deleted
    finally:
        secret_store.cache_clear()


# -- which identity opens the vault (AZURE_KEYVAULT_CREDENTIAL) ------------------------------

SP_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SP_SECRET = "sp-client-secret-never-printed"
MSI_HEADER = "msi-identity-header-never-printed"


@pytest.fixture
def identity(tls):
    from tests.credentials.identity_fake import running_identity
    from tests.credentials.keyvault_fake import TENANT

    with running_identity(
        tls.server_context(),
        tenant=TENANT,
        client_id=SP_CLIENT_ID,
        client_secret=SP_SECRET,
        identity_header=MSI_HEADER,
    ) as fake:
        yield fake


@pytest.fixture
def clean_azure_env(monkeypatch, tls):
    """No Azure identity variables from the machine; the fakes' CA trusted by requests."""
    import os

    for name in list(os.environ):
        if name.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path)
    return monkeypatch


def _round_trip(credential, tls) -> str:
    with running_vault(tls.server_context()) as vault:
        client = SecretClient(
            vault_url=vault.url,
            credential=credential,
            verify_challenge_resource=False,
            connection_verify=tls.ca_path,
        )
        store = KeyVaultStore(client)
        store.put("opened-by", "identity-check")
        assert store.get("opened-by").value == "identity-check"
        assert vault.tokens and len(set(vault.tokens)) == 1
        return vault.tokens[0]


def test_a_service_principal_from_the_environment_opens_the_vault(
    settings, identity, clean_azure_env, tls
):
    from credentials.secrets.keyvault import credential_from_settings
    from tests.credentials.keyvault_fake import TENANT

    settings.AZURE_KEYVAULT_CREDENTIAL = "environment"
    clean_azure_env.setenv("AZURE_TENANT_ID", TENANT)
    clean_azure_env.setenv("AZURE_CLIENT_ID", SP_CLIENT_ID)
    clean_azure_env.setenv("AZURE_CLIENT_SECRET", SP_SECRET)
    clean_azure_env.setenv("AZURE_AUTHORITY_HOST", identity.url)
    # A private authority is not in Microsoft's instance list (and there is no network).
    credential = credential_from_settings(disable_instance_discovery=True)
    token = _round_trip(credential, tls)
    assert not identity.refused
    assert [(i["kind"], i["token"]) for i in identity.issued] == [("entra", token)]
    assert "https://vault.azure.net/.default" in identity.issued[0]["scope"]


def test_a_managed_identity_opens_the_vault(settings, identity, clean_azure_env, tls):
    from credentials.secrets.keyvault import credential_from_settings

    settings.AZURE_KEYVAULT_CREDENTIAL = "managed_identity"
    clean_azure_env.setenv("IDENTITY_ENDPOINT", f"{identity.url}/msi/token")
    clean_azure_env.setenv("IDENTITY_HEADER", MSI_HEADER)
    token = _round_trip(credential_from_settings(), tls)
    assert not identity.refused
    assert [(i["kind"], i["token"]) for i in identity.issued] == [("msi", token)]
    assert identity.issued[0]["scope"].startswith("https://vault.azure.net")


def test_a_wrong_service_principal_secret_is_a_store_error_without_values(
    settings, identity, clean_azure_env, tls
):
    from credentials.secrets.keyvault import credential_from_settings
    from tests.credentials.keyvault_fake import TENANT

    settings.AZURE_KEYVAULT_CREDENTIAL = "environment"
    clean_azure_env.setenv("AZURE_TENANT_ID", TENANT)
    clean_azure_env.setenv("AZURE_CLIENT_ID", SP_CLIENT_ID)
    clean_azure_env.setenv("AZURE_CLIENT_SECRET", "not-the-secret-either")
    clean_azure_env.setenv("AZURE_AUTHORITY_HOST", identity.url)
    credential = credential_from_settings(disable_instance_discovery=True)
    with pytest.raises(SecretStoreError) as info:
        _round_trip(credential, tls)
    assert identity.refused and not identity.issued
    assert "not-the-secret-either" not in str(info.value)
    assert "value-never-shown" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "present", "missing"),
    [
        (
            "environment",
            {
                "AZURE_TENANT_ID": "tenant-never-shown",
                "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pw-never-shown",
            },
            "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH in",
        ),
        (
            "workload_identity",
            {"AZURE_CLIENT_ID": "client-never-shown"},
            "AZURE_TENANT_ID, AZURE_FEDERATED",
        ),
    ],
)
def test_a_pinned_credential_without_its_variables_names_them(
    settings, clean_azure_env, kind, present, missing
):
    from credentials.secrets.keyvault import credential_from_settings

    settings.AZURE_KEYVAULT_CREDENTIAL = kind
    for name, value in present.items():
        clean_azure_env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as info:
        credential_from_settings()
    assert f"AZURE_KEYVAULT_CREDENTIAL={kind} needs {missing}" in str(info.value)
    assert not any(value in str(info.value) for value in present.values())


def test_the_store_opens_the_vault_with_the_configured_credential(settings, clean_azure_env):
    from azure.identity import ManagedIdentityCredential

    from credentials.secrets import keyvault

    seen = []
    real = keyvault.credential_from_settings

    def spy():
        seen.append(real())
        return seen[-1]

    clean_azure_env.setattr(keyvault, "credential_from_settings", spy)
    settings.CASTIEL_SECRET_STORE = "azure_keyvault"
    settings.AZURE_KEYVAULT_URL = "https://castiel-test.vault.azure.net"
    settings.AZURE_KEYVAULT_CREDENTIAL = "managed_identity"
    secret_store.cache_clear()
    try:
        assert isinstance(secret_store(), KeyVaultStore)
        assert [type(c) for c in seen] == [ManagedIdentityCredential]
    finally:
        secret_store.cache_clear()
