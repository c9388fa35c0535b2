"""Usage and headroom in the API and the admin; overrides through the API."""

from __future__ import annotations

import pytest

from ratelimit.models import RateLimitOverride
from ratelimit.services import acquire
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def levels_of(body) -> dict:
    return {(lvl["level"], lvl["operation"]): lvl for lvl in body["usage"]["levels"]}


def test_usage_shows_each_level_with_its_headroom(api, tenant):
    integration = IntegrationFactory(tenant=tenant, provider="generic_rest")
    other = IntegrationFactory(tenant=tenant)
    for _ in range(3):
        assert acquire(tenant, integration, "fetch").allowed
    assert acquire(tenant, integration, "update").allowed
    assert acquire(tenant, other, "fetch").allowed

    body = api.get(f"/api/v1/rate-limits/{integration.pk}/").json()
    levels = levels_of(body)
    assert levels[("tenant", None)]["used"] == 5  # spans both integrations
    assert levels[("tenant", None)]["limit"] == 5000
    assert levels[("integration", None)]["used"] == 4
    assert levels[("integration", None)]["limit"] == 300  # generic_rest catalogue default
    assert levels[("integration", None)]["source"].startswith("catalogue")
    assert levels[("operation", "fetch")]["used"] == 3
    assert levels[("operation", "fetch")]["remaining"] == 197
    assert levels[("operation", "fetch")]["headroom"] == pytest.approx(197 / 200, abs=1e-3)
    assert levels[("operation", "update")]["used"] == 1
    assert levels[("operation", "delete")]["used"] == 0
    assert body["usage"]["multiplier"] == 1.0
    assert body["usage"]["blocked_until"] is None
    listed = api.get("/api/v1/rate-limits/").json()["results"]
    assert {row["id"] for row in listed} == {str(integration.pk), str(other.pk)}


def test_overrides_change_the_policy_at_once(api, tenant):
    integration = IntegrationFactory(tenant=tenant)
    assert acquire(tenant, integration, "fetch").allowed  # the default policy is now cached
    response = api.post(
        "/api/v1/rate-limit-overrides/",
        {
            "integration": str(integration.pk),
            "level": "operation",
            "operation": "fetch",
            "limit": 2,
            "window_seconds": 60,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert acquire(tenant, integration, "fetch").allowed
    refused = acquire(tenant, integration, "fetch")
    assert not refused.allowed and refused.level == "operation"
    fetch = levels_of(api.get(f"/api/v1/rate-limits/{integration.pk}/").json())[
        ("operation", "fetch")
    ]
    assert (fetch["limit"], fetch["used"], fetch["remaining"]) == (2, 2, 0)
    assert fetch["source"] == "override (integration)"

    override_id = response.json()["id"]
    assert (
        api.patch(
            f"/api/v1/rate-limit-overrides/{override_id}/", {"limit": 3}, format="json"
        ).status_code
        == 200
    )
    assert acquire(tenant, integration, "fetch").allowed
    assert api.delete(f"/api/v1/rate-limit-overrides/{override_id}/").status_code == 204
    assert RateLimitOverride.objects.count() == 0


def test_tenant_wide_override_applies_to_every_integration_unless_one_has_its_own(api, tenant):
    first, second = IntegrationFactory(tenant=tenant), IntegrationFactory(tenant=tenant)
    api.post(
        "/api/v1/rate-limit-overrides/",
        {"level": "integration", "limit": 7, "window_seconds": 10},
        format="json",
    )
    api.post(
        "/api/v1/rate-limit-overrides/",
        {"integration": str(second.pk), "level": "integration", "limit": 9, "window_seconds": 10},
        format="json",
    )
    first_level = levels_of(api.get(f"/api/v1/rate-limits/{first.pk}/").json())[
        ("integration", None)
    ]
    second_level = levels_of(api.get(f"/api/v1/rate-limits/{second.pk}/").json())[
        ("integration", None)
    ]
    assert (first_level["limit"], first_level["source"]) == (7, "override (tenant)")
    assert (second_level["limit"], second_level["source"]) == (9, "override (integration)")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"level": "operation", "limit": 5, "window_seconds": 60}, "operation"),
        (
            {"level": "integration", "operation": "fetch", "limit": 5, "window_seconds": 60},
            "operation",
        ),
        ({"level": "integration", "limit": 0, "window_seconds": 60}, "limit"),
        ({"level": "integration", "limit": 5, "window_seconds": 90_000}, "window_seconds"),
        ({"level": "integration", "limit": 5, "window_seconds": 0.5}, "window_seconds"),
        ({"level": "weekly", "limit": 5, "window_seconds": 60}, "level"),
    ],
)
def test_invalid_overrides_are_400_with_the_field(api, body, field):
    response = api.post("/api/v1/rate-limit-overrides/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"]


def test_tenant_level_override_cannot_name_an_integration(admin_client, tenant):
    # Tenant-level limits are the operator's (the API refuses them: test_override_authority).
    integration = IntegrationFactory(tenant=tenant)
    response = admin_client.post(
        "/admin/ratelimit/ratelimitoverride/add/",
        {
            "tenant": str(tenant.pk),
            "integration": str(integration.pk),
            "level": "tenant",
            "limit": 5,
            "window_seconds": 60,
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "A tenant-level limit applies to the whole tenant." in response.content.decode()
    assert not RateLimitOverride.objects.exists()


def test_duplicate_override_is_400_not_500(api):
    body = {"level": "integration", "limit": 5, "window_seconds": 60}
    assert api.post("/api/v1/rate-limit-overrides/", body, format="json").status_code == 201
    response = api.post("/api/v1/rate-limit-overrides/", body, format="json")
    assert response.status_code == 400


def test_an_override_cannot_target_another_tenants_integration(api, other_tenant):
    theirs = IntegrationFactory(tenant=other_tenant)
    response = api.post(
        "/api/v1/rate-limit-overrides/",
        {"integration": str(theirs.pk), "level": "integration", "limit": 1, "window_seconds": 60},
        format="json",
    )
    assert response.status_code == 400
    assert "integration" in response.json()["details"]
    assert not RateLimitOverride.objects.exists()


def test_admin_shows_usage_and_headroom(admin_client, tenant):
    integration = IntegrationFactory(tenant=tenant, name="Shop")
    for _ in range(4):
        acquire(tenant, integration, "fetch")
    listing = admin_client.get("/admin/ratelimit/integrationusage/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Shop" in page and "4 / 5000 per 60s" in page and "4 / 300 per 60s" in page
    detail = admin_client.get(f"/admin/ratelimit/integrationusage/{integration.pk}/change/")
    assert detail.status_code == 200
    assert "fetch" in detail.content.decode() and "healthy" in detail.content.decode()
    overrides = admin_client.get("/admin/ratelimit/ratelimitoverride/add/")
    assert overrides.status_code == 200
