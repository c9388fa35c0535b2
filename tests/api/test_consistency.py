"""Cross-cutting API behaviour: filters by related ids never reveal other tenants' ids,
invalid filter values are 400 with the field, ordering is explicit, every operation
documents its errors."""

from __future__ import annotations

import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.syncing.factories import make_dead_letter, make_sync_task

pytestmark = [pytest.mark.embedded]

RELATED_FILTERS = [
    ("/api/v1/sync-tasks/", "integration"),
    ("/api/v1/sync-runs/", "task"),
    ("/api/v1/sync-runs/", "integration"),
    ("/api/v1/records/", "integration"),
    ("/api/v1/conflicts/", "task"),
    ("/api/v1/outbound-changes/", "integration"),
    ("/api/v1/dead-letters/", "integration"),
    ("/api/v1/credentials/", "integration"),
    ("/api/v1/token-refresh-audits/", "credential"),
    ("/api/v1/webhook-registrations/", "integration"),
    ("/api/v1/webhook-events/", "registration"),
    ("/api/v1/rate-limit-overrides/", "integration"),
    ("/api/v1/push-rules/", "source_integration"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "name"), RELATED_FILTERS)
def test_a_foreign_id_in_a_filter_answers_like_an_unknown_one(api, other_tenant, url, name):
    theirs = make_sync_task(other_tenant)
    foreign = {
        "integration": theirs.integration_id,
        "source_integration": theirs.integration_id,
        "task": theirs.pk,
    }.get(name, theirs.integration_id)
    unknown = api.get(url, {name: str(uuid.uuid4())})
    known_elsewhere = api.get(url, {name: str(foreign)})
    assert unknown.status_code == known_elsewhere.status_code == 200
    assert unknown.json()["count"] == known_elsewhere.json()["count"] == 0

    invalid = api.get(url, {name: "not-a-uuid"})
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "invalid" and name in invalid.json()["details"]


@pytest.mark.django_db
def test_filters_and_ordering_on_dead_letters(api, tenant):
    first, second = make_dead_letter(tenant), make_dead_letter(tenant)
    second.error_code = "http_500"
    second.retryable = True
    second.save()
    by_code = api.get("/api/v1/dead-letters/", {"error_code": "http_500"}).json()
    assert [d["id"] for d in by_code["results"]] == [str(second.pk)]
    retryable = api.get("/api/v1/dead-letters/", {"retryable": "false"}).json()
    assert [d["id"] for d in retryable["results"]] == [str(first.pk)]
    oldest_first = api.get("/api/v1/dead-letters/", {"ordering": "created_at"}).json()
    assert [d["id"] for d in oldest_first["results"]] == [str(first.pk), str(second.pk)]
    # An unknown ordering field is ignored (never a 500 on a computed or secret field).
    assert api.get("/api/v1/sync-runs/", {"ordering": "duration_seconds"}).status_code == 200
    assert api.get("/api/v1/dead-letters/", {"page": 99}).status_code == 404


def test_every_operation_documents_its_errors():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            for code in ("400", "401", "404"):
                if code not in codes:
                    missing.append(f"{method.upper()} {path}: {code}")
            error = operation["responses"]["404"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    assert not missing, missing
    conflicts = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "409" in operation["responses"]
    }
    for expected in [
        ("/api/v1/sync-tasks/{id}/run/", "post"),
        ("/api/v1/sync-tasks/{id}/dry-run/", "post"),
        ("/api/v1/conflicts/{id}/resolve/", "post"),
        ("/api/v1/dead-letters/{id}/replay/", "post"),
        ("/api/v1/webhook-events/{id}/replay/", "post"),
        ("/api/v1/records/{id}/", "patch"),
        ("/api/v1/credentials/", "post"),
    ]:
        assert expected in conflicts, expected


@pytest.mark.django_db
def test_time_filters_take_any_iso_offset_and_reject_out_of_range_times(api, tenant):
    make_sync_task(tenant)
    # +17:44 is valid ISO 8601 but beyond what PostgreSQL accepts: converted to UTC first.
    ok = api.get("/api/v1/integrations/", {"created_after": "2000-03-28T21:31:38+17:44"})
    assert ok.status_code == 200 and ok.json()["count"] == 1
    early = api.get("/api/v1/webhook-events/", {"received_after": "0001-01-01T00:00:00+05:00"})
    assert early.status_code == 400 and "received_after" in early.json()["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_api_routes_are_404_json_for_every_method(api, method):
    response = getattr(api, method)("/api/v1/integrations/0.5/", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_numbers_beyond_the_columns_are_400_not_500(api, tenant):
    big = api.post(
        "/api/v1/rate-limit-overrides/",
        # (the tenant level is operator-only: an operation-level override reaches validation)
        {
            "level": "operation",
            "operation": "fetch",
            "limit": 409858288857448,
            "window_seconds": 60,
        },
        format="json",
    )
    assert big.status_code == 400 and "limit" in big.json()["details"]
