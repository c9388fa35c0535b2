"""The refresh path's hand-written statements read and write exactly what the ORM does.

credentials/refresh_statements.py (lock and re-read) and credentials/secrets/db_statements.py
(secret read and versioned insert) replace ORM calls for speed; these tests compare them
with the ORM, column by column, on whichever database the suite runs (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials.models import Credential, StoredSecret
from credentials.oauth import TokenResult
from credentials.refresh_statements import load_credential, release_lease, take_lease
from credentials.secrets.db_statements import insert_next_version, read_row
from credentials.services import credential_store_oauth_tokens
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def _values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.fixture
def credential():
    integration = IntegrationFactory(config={"base_url": "https://example.test", "k": [1, "ü"]})
    credential = credential_store_oauth_tokens(
        integration=integration,
        result=TokenResult(
            secret={"access_token": "at-statement", "refresh_token": "rt-statement"},
            expires_at=timezone.now() + timedelta(minutes=30),
            refresh_expires_at=timezone.now() + timedelta(days=30),
            scopes=["read", "write"],
            refresh_token_rotated=False,
        ),
        requested_scopes=["read", "write"],
    )
    Credential.objects.filter(pk=credential.pk).update(
        settings={"nested": {"a": 1}}, last_error="é", next_retry_at=timezone.now()
    )
    return credential


def test_load_credential_matches_the_orm_with_its_integration(credential):
    orm = Credential.objects.select_related("integration").get(pk=credential.pk)
    loaded = load_credential(str(credential.pk))
    assert not loaded.get_deferred_fields() and not loaded.integration.get_deferred_fields()
    assert _values(loaded) == _values(orm)
    assert _values(loaded.integration) == _values(orm.integration)
    assert loaded.integration.config["k"] == [1, "ü"]
    assert loaded.secret_fields == orm.secret_fields and loaded.scopes == ["read", "write"]


def test_load_credential_of_a_missing_row_raises_does_not_exist(credential):
    Credential.objects.filter(pk=credential.pk).delete()
    with pytest.raises(Credential.DoesNotExist):
        load_credential(credential.pk)


def test_the_lease_is_exclusive_until_it_expires_or_its_owner_releases_it(credential):
    now = timezone.now()
    assert take_lease(credential.pk, owner="a", until=now + timedelta(seconds=30), now=now)
    assert not take_lease(credential.pk, owner="b", until=now + timedelta(seconds=30), now=now)
    release_lease(credential.pk, owner="b")  # not b's lease: nothing happens
    row = Credential.objects.get(pk=credential.pk)
    assert row.refresh_lease_owner == "a" and row.refresh_lease_until is not None
    later = now + timedelta(seconds=31)  # a's lease has expired
    assert take_lease(credential.pk, owner="b", until=later + timedelta(seconds=30), now=later)
    release_lease(credential.pk, owner="b")
    row = Credential.objects.get(pk=credential.pk)
    assert row.refresh_lease_owner == "" and row.refresh_lease_until is None


def test_versions_are_inserted_in_order_and_read_back_as_the_orm_reads_them():
    expires = timezone.now() + timedelta(days=1)
    first = insert_next_version("stmt", "c1", tags={"t": "ü"}, expires_on=None, not_before=None)
    second = insert_next_version("stmt", "c2", tags={}, expires_on=expires, not_before=None)
    other = insert_next_version("stmt-other", "c3", tags=None, expires_on=None, not_before=None)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    orm = StoredSecret.objects.get(name="stmt", version=2)
    newest = read_row("stmt")
    assert not newest.get_deferred_fields() and _values(newest) == _values(orm)
    assert orm.expires_on == expires and orm.ciphertext == "c2"
    assert read_row("stmt", 1).tags == {"t": "ü"}
    assert read_row("stmt", 3) is None and read_row("missing") is None
