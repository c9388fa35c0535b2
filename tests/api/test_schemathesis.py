"""schemathesis against the live OpenAPI schema (served at /api/schema/, requests through the
WSGI app): every operation, fuzzed with generated input as an authenticated tenant that owns
one object of every kind — half of the generated ids are swapped for that object's id, so
detail views and actions run on real rows too. No answer may be a 5xx, and every answer
must match the schema: documented status code, content type, headers and body.

Request-strictness checks (schemathesis' ``negative_data_rejection``) are not run: DRF
coerces "true"/1 into booleans and ignores an unparsable ``page_size`` by design.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from castiel.ratelimit.models import RateLimitOverride
from credentials.models import Credential, TokenRefreshAudit
from integrations.models import Integration
from syncing.models import Conflict, DeadLetter, OutboundChange, PushRule, Record, SyncRun, SyncTask
from tests.conftest import client_for
from tests.credentials.factories import make_audit
from tests.factories import ISOLATION_MAKERS
from webhooks.models import WebhookEvent, WebhookRegistration

pytestmark = [pytest.mark.slow]

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The first path segment after /api/v1/ → the model its {id} names.
RESOURCES = {
    "integrations": Integration,
    "rate-limits": Integration,
    "credentials": Credential,
    "token-refresh-audits": TokenRefreshAudit,
    "sync-tasks": SyncTask,
    "sync-runs": SyncRun,
    "records": Record,
    "conflicts": Conflict,
    "outbound-changes": OutboundChange,
    "dead-letters": DeadLetter,
    "push-rules": PushRule,
    "webhook-registrations": WebhookRegistration,
    "webhook-events": WebhookEvent,
    "rate-limit-overrides": RateLimitOverride,
}
_swap = itertools.count()


@pytest.fixture
def in_process_requests():
    """Requests go through the WSGI handler in this process and this test's transaction:
    keep the handler from closing the database connection after each request (Django's
    own test client does the same)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def provider(http_server):
    """What the seeded sync task pulls from (its dry run fetches a real, empty page)."""

    @http_server.route("GET", "/contacts")
    def contacts(request):
        return 200, {}, []

    return http_server


@pytest.fixture
def seeded(tenant, in_process_requests, provider):
    """The tenant owns one object of every kind the API exposes: {model: id} and its key."""
    import tests.test_tenant_isolation  # noqa: F401  (loads every app's isolation makers)

    owned = {model: make(tenant).pk for model, make in ISOLATION_MAKERS.items()}
    owned[TokenRefreshAudit] = make_audit(tenant).pk
    task = SyncTask.objects.select_related("integration").get(pk=owned[SyncTask])
    task.integration.config = {"base_url": provider.url}
    task.integration.save()
    return owned, client_for(tenant).raw_key


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, seeded, pushes, enqueued):
    owned, key = seeded
    if "id" in (case.path_parameters or {}) and next(_swap) % 2 == 0:
        resource = case.operation.path.split("/")[3]
        case.path_parameters["id"] = str(owned[RESOURCES[resource]])
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
