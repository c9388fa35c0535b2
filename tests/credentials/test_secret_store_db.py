"""The encrypted database store: the shared contract plus key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from credentials.models import StoredSecret
from credentials.secrets import SecretStoreError
from credentials.secrets.db import EncryptedDatabaseStore
from tests.credentials.secret_store_contract import SecretStoreContract

KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()


@pytest.fixture
def store(db):
    return EncryptedDatabaseStore([KEY_OLD])


@pytest.fixture
def concurrent_ok(transactional_db):
    """Threads need committed data and their own connections."""


@pytest.mark.embedded
class TestEncryptedDatabaseStore(SecretStoreContract):
    def test_nothing_is_stored_in_clear(self, store):
        store.put("clear-check", "plain-text-secret")
        row = StoredSecret.objects.get(name="clear-check")
        assert "plain-text-secret" not in row.ciphertext

    def test_rotation_re_encrypts_under_the_newest_key(self, store, settings):
        store.put("rot", "value-1")
        store.put("rot", "value-2")
        settings.CASTIEL_SECRET_KEYS = [KEY_NEW, KEY_OLD]
        from credentials.secrets import secret_store

        secret_store.cache_clear()
        try:
            call_command("rotate_secret_keys", stdout=open("/dev/null", "w"))
        finally:
            secret_store.cache_clear()
        only_new = EncryptedDatabaseStore([KEY_NEW])
        assert only_new.get("rot").value == "value-2"
        assert only_new.get("rot", "1").value == "value-1"
        with pytest.raises(Exception, match="cannot be decrypted"):
            EncryptedDatabaseStore([KEY_OLD]).get("rot")

    def test_a_wrong_key_gives_a_clear_error_without_the_value(self, store):
        store.put("wrong-key", "hidden-value")
        with pytest.raises(Exception, match="cannot be decrypted") as info:
            EncryptedDatabaseStore([KEY_NEW]).get("wrong-key")
        assert "hidden-value" not in str(info.value)


@pytest.mark.embedded
def test_health_fails_when_the_keys_cannot_decrypt_the_newest_secret(store):
    store.put("cred-health", "the-secret-value")
    assert "1 key(s)" in store.health()
    with pytest.raises(SecretStoreError) as failure:
        EncryptedDatabaseStore([KEY_NEW]).health()
    assert "CASTIEL_SECRET_KEYS" in str(failure.value)
    assert "the-secret-value" not in str(failure.value)
    assert EncryptedDatabaseStore([KEY_NEW, KEY_OLD]).health()  # mid-rotation: both keys


@pytest.mark.embedded
def test_healthz_reports_the_secret_store(db, client, settings):
    from credentials.secrets import secret_store
    from tests.foundation.test_metrics_and_queue import beat

    beat(settings.Q_CLUSTER["name"])
    secret_store.cache_clear()
    secret_store().put("cred-healthz", "healthz-secret-value")
    checks = client.get("/healthz").json()["checks"]
    assert checks["secrets"]["status"] == "ok", checks
    settings.CASTIEL_SECRET_KEYS = [KEY_NEW]
    secret_store.cache_clear()
    try:
        response = client.get("/healthz")
    finally:
        secret_store.cache_clear()
    assert response.status_code == 503
    assert response.json()["checks"]["secrets"]["status"] == "fail"
    assert "healthz-secret-value" not in response.content.decode()
