"""A refresh triggered inside the caller's transaction is committed on its own: if the
caller rolls back, the rotated refresh token (the only valid one) must not be lost."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from credentials.clients import client_for
from credentials.models import Credential, StoredSecret, TokenRefreshAudit
from credentials.secrets_io import read_document
from tests.credentials.helpers import fp

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def test_rotated_tokens_survive_the_callers_rollback(postgres, connect, oauth_integration):
    connect(oauth_integration)
    credential = Credential.objects.get()
    before = read_document(credential)
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    with pytest.raises(Rollback), transaction.atomic():
        assert client_for(oauth_integration).get("/api/me/").status_code == 200
        raise Rollback  # e.g. the sync page failed to save
    after = read_document(Credential.objects.get(pk=credential.pk))
    assert fp(after["refresh_token"]) != fp(before["refresh_token"])
    assert StoredSecret.objects.filter(name=credential.secret_name).count() == 2
    assert TokenRefreshAudit.objects.get().outcome == "refreshed"
    # And the surviving token is the live one at the provider.
    assert client_for(oauth_integration).get("/api/me/").status_code == 200
