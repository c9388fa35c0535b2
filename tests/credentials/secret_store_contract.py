"""The secret-store contract: one suite, run against every backend.

A backend's test module subclasses :class:`SecretStoreContract` and provides a ``store``
fixture (a fresh, empty store).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from credentials.secrets import (
    SecretExpiredError,
    SecretNotFoundError,
    SecretNotYetValidError,
    SecretStoreError,
)


class SecretStoreContract:
    def test_put_then_get_returns_the_value(self, store):
        version = store.put("api-token", "s3cr3t-value", tags={"tenant": "t1"})
        secret = store.get("api-token")
        assert secret.value == "s3cr3t-value"
        assert secret.version == version.version
        assert secret.meta.tags.get("tenant") == "t1"

    def test_every_put_creates_a_new_version_and_old_ones_stay_readable(self, store):
        first = store.put("rotating", "one")
        second = store.put("rotating", "two")
        assert first.version != second.version
        assert store.get("rotating").value == "two"
        assert store.get("rotating", first.version).value == "one"
        assert [v.version for v in store.list_versions("rotating")] == [
            first.version,
            second.version,
        ]

    def test_missing_secret_and_missing_version(self, store):
        with pytest.raises(SecretNotFoundError):
            store.get("never-stored")
        store.put("present", "x")
        with pytest.raises(SecretNotFoundError):
            store.get("present", "999999")

    def test_delete_removes_every_version_and_is_idempotent(self, store):
        store.put("doomed", "a")
        store.put("doomed", "b")
        store.delete("doomed")
        with pytest.raises(SecretNotFoundError):
            store.get("doomed")
        assert store.list_versions("doomed") == []
        store.delete("doomed")

    def test_a_deleted_name_can_be_stored_again(self, store):
        store.put("phoenix", "old")
        store.delete("phoenix")
        store.put("phoenix", "new")
        assert store.get("phoenix").value == "new"

    def test_expired_and_not_yet_valid_versions_are_refused(self, store):
        now = timezone.now()
        store.put("expired", "x", expires_on=now - timedelta(minutes=1))
        with pytest.raises(SecretExpiredError):
            store.get("expired")
        store.put("future", "y", not_before=now + timedelta(hours=1))
        with pytest.raises(SecretNotYetValidError):
            store.get("future")

    @pytest.mark.parametrize("bad", ["has_underscore", "space name", "", "x" * 128, "ünï"])
    def test_invalid_names_are_refused_clearly(self, store, bad):
        with pytest.raises(SecretStoreError, match="invalid secret name"):
            store.put(bad, "v")

    def test_values_are_never_in_reprs_or_errors(self, store):
        store.put("quiet", "do-not-print-me")
        secret = store.get("quiet")
        assert "do-not-print-me" not in repr(secret) and "do-not-print-me" not in str(secret)

    def test_unicode_and_large_values_round_trip(self, store):
        value = "ключ-🔑-" + "x" * 20000
        store.put("big", value)
        assert store.get("big").value == value

    def test_concurrent_puts_each_get_their_own_version(self, store, concurrent_ok):
        results, errors = [], []

        def writer(n):
            try:
                results.append(store.put("contended", f"v{n}").version)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(set(results)) == 6
        assert len(store.list_versions("contended")) == 6

    def test_health_reports_a_reachable_store(self, store):
        store.put("health-neighbour", "a value")
        assert store.health()  # a short description, no exception
