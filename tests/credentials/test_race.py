"""Single-flight refresh under a real race: 8 workers (threads, each with its own database
connection) hit one credential whose server rotates refresh tokens with reuse protection —
any second use of a refresh token would answer invalid_grant and revoke the whole family.

Runs on PostgreSQL (row lock, with and without the Redis lock in front) in the main pass of
scripts/test and on SQLite (conditional-UPDATE lease) in the embedded pass.
"""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connections
from django.utils import timezone

from credentials.clients import client_for
from credentials.models import Credential, TokenRefreshAudit
from credentials.oauth import TokenResult
from credentials.secrets_io import read_document
from credentials.services import credential_store_oauth_tokens, oauth_client_secret_set
from integrations.models import Integration
from tests.credentials.helpers import fp
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

WORKERS = 8


# With Redis configured (PostgreSQL pass) both variants run; the embedded pass has no Redis.
LOCK_MODES = ["redis", "db-only"] if os.environ.get("REDIS_URL") else ["db-only"]


@pytest.fixture(params=LOCK_MODES)
def lock_mode(request, settings):
    if request.param == "db-only":
        settings.REDIS_URL = ""  # the database lock alone must be enough
    return request.param


@pytest.fixture
def shared_credential(tenant, oauth_server, lock_mode):
    [tokens] = oauth_server.seed(1)
    integration = IntegrationFactory(
        tenant=tenant,
        provider="generic_rest",
        config={"base_url": oauth_server.url, "oauth": oauth_server.oauth_config()},
    )
    oauth_client_secret_set(integration=integration, client_secret=oauth_server.client_secret)
    credential = credential_store_oauth_tokens(
        integration=integration,
        result=TokenResult(
            secret={**tokens, "token_type": "Bearer"},
            expires_at=timezone.now() + timezone.timedelta(minutes=30),
            refresh_expires_at=None,
            scopes=["read"],
            refresh_token_rotated=False,
        ),
        requested_scopes=["read"],
    )
    return credential, tokens


def _run_workers(work):
    barrier = threading.Barrier(WORKERS)
    results: list = [None] * WORKERS
    errors: list = []

    def worker(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work()
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_eight_workers_answered_401_trigger_exactly_one_refresh(shared_credential, oauth_server):
    credential, tokens = shared_credential
    oauth_server.expire(tokens["access_token"])  # every worker's first call gets a 401
    oauth_server.reset_stats()
    integration = Integration.objects.get(pk=credential.integration_id)

    def work():
        client = client_for(integration)
        response = client.get("/api/me/")
        return response.status_code, fp(read_document(client.auth.credential)["access_token"])

    results = _run_workers(work)
    assert oauth_server.refreshes() == {"refresh_token:200:": 1}  # zero invalid_grant
    final = read_document(Credential.objects.get(pk=credential.pk))
    assert results == [(200, fp(final["access_token"]))] * WORKERS
    assert fp(final["refresh_token"]) != fp(tokens["refresh_token"])
    outcomes = sorted(
        TokenRefreshAudit.objects.filter(credential=credential).values_list("outcome", flat=True)
    )
    assert outcomes.count("refreshed") == 1
    assert set(outcomes) <= {"refreshed", "skipped"}  # late 401s may come after the refresh
    assert Credential.objects.get(pk=credential.pk).status == "active"


def test_eight_workers_seeing_an_expired_token_trigger_exactly_one_refresh(
    shared_credential, oauth_server
):
    credential, tokens = shared_credential
    oauth_server.expire(tokens["access_token"])
    Credential.objects.filter(pk=credential.pk).update(expires_at=timezone.now())
    oauth_server.reset_stats()
    integration = Integration.objects.get(pk=credential.integration_id)

    def work():
        response = client_for(integration).get("/api/me/")
        return response.status_code

    assert _run_workers(work) == [200] * WORKERS
    assert oauth_server.refreshes() == {"refresh_token:200:": 1}
    audits = TokenRefreshAudit.objects.filter(credential=credential)
    assert audits.filter(outcome="refreshed").count() == 1
    assert audits.filter(outcome="skipped").count() == WORKERS - 1
