"""Fixtures for the operator experience: an admin user, real syncs against the sandbox."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.syncing.fixtures import (  # noqa: F401  (fixtures)
    cosmos_endpoint,
    cosmos_outage_store,
    cosmos_proxy,
    cosmos_store,
    enqueued,
    record_store,
    stored_records,
)
from tests.syncing.outbound_support import pushes  # noqa: F401  (fixture)
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401  (fixture)

OPERATOR = ("ops", "ops@example.com", "pw-ops-12345")


@pytest.fixture
def operator_user(db):
    return get_user_model().objects.create_superuser(*OPERATOR)


@pytest.fixture
def operator(client, operator_user):
    """A Django test client logged in to the admin as a superuser."""
    client.force_login(operator_user)
    return client
