"""The encrypted database store: the shared contract plus key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from credentials.models import StoredSecret
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
