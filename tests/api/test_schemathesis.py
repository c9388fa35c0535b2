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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from credentials.models import Credential, TokenRefreshAudit
from integrations.models import Integration
from notifications.models import Channel, Delivery, EventSubscription, Incident, Subscription
from ratelimit.models import RateLimitOverride
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
    "notification-channels": Channel,
    "notification-subscriptions": Subscription,
    "incidents": Incident,
    "notification-deliveries": Delivery,
    "event-subscriptions": EventSubscription,
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


# -- bodies no schema describes: nested too deep, larger than Django reads -----------------------

_operations_with_bodies = sorted(
    (path, method)
    for path, operations in schema.raw_schema["paths"].items()
    for method, operation in operations.items()
    if "requestBody" in operation
)


def _send_raw(seeded, path: str, method: str, body: str):
    """``body`` as JSON to the operation, on an object the tenant owns; the answer must be a
    documented 4xx in the error shape (or the operation's success, for one that ignores its
    body) — never a 5xx."""
    from django.test import Client

    owned, key = seeded
    if "{id}" in path:
        path = path.replace("{id}", str(owned[RESOURCES[path.split("/")[3]]]))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.generic(method.upper(), path, body, content_type="application/json")


def _documented(path: str, method: str) -> set[int]:
    return {int(code) for code in schema.raw_schema["paths"][path][method]["responses"]}


@pytest.mark.django_db
@pytest.mark.embedded
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    operation=st.sampled_from(_operations_with_bodies),
    depth=st.integers(min_value=1_000, max_value=5_000),
    opener=st.sampled_from(["[", '{"a":', '{"name": [']),
)
def test_json_nested_too_deep_is_a_documented_4xx(seeded, operation, depth, opener):
    """json raises RecursionError past ~1,000 levels: a 400 ``parse_error``, never a 500."""
    path, method = operation
    closer = {"[": "]", '{"a":': "}", '{"name": [': "]}"}[opener]
    response = _send_raw(seeded, path, method, opener * depth + "1" + closer * depth)
    assert response.status_code < 500, (method, path, response.content[:200])
    assert response.status_code in _documented(path, method), (method, path)
    if response.status_code == 400:
        assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
@pytest.mark.embedded
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    operation=st.sampled_from(_operations_with_bodies),
    extra=st.integers(min_value=1, max_value=256 * 1024),
)
def test_a_body_over_the_upload_limit_is_a_documented_413(seeded, operation, extra):
    from django.conf import settings as django_settings

    path, method = operation
    size = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + extra
    response = _send_raw(seeded, path, method, '{"name": "' + "x" * (size - 12) + '"}')
    assert response.status_code < 500, (method, path, response.content[:200])
    assert response.status_code in _documented(path, method), (method, path)
    if response.status_code == 413:
        assert response.json()["code"] == "request_too_large"
