"""Who may set which limit: the tenant level protects the other tenants, so only an operator
(the admin) sets it; through the API a tenant may only *lower* a limit below the provider's
documented one — and an override it saved above that never applies."""

from __future__ import annotations

import pytest

from ratelimit.models import RateLimitOverride
from ratelimit.policy import Limit, within
from ratelimit.selectors import resolve_policy
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/rate-limit-overrides/"
HUGE = 2**31 - 1


def post(api, **body):
    return api.post(URL, body, format="json")


def test_a_tenant_cannot_lift_its_own_tenant_level_limit(api, tenant):
    response = post(api, level="tenant", limit=HUGE, window_seconds=60)
    assert response.status_code == 403, response.json()
    body = response.json()
    assert body["code"] == "tenant_limit_operator_only"
    assert "operator" in body["message"]
    # Operator-only, also to lower it: the API does not set tenant-level limits at all.
    assert post(api, level="tenant", limit=10, window_seconds=60).status_code == 403
    assert not RateLimitOverride.objects.exists()
    assert resolve_policy(IntegrationFactory(tenant=tenant)).tenant.limit == 5000


def test_a_tenant_cannot_change_or_delete_what_an_operator_set(api, tenant):
    integration = IntegrationFactory(tenant=tenant)
    tenant_level = RateLimitOverride.objects.create(
        tenant=tenant, level="tenant", limit=100, window_seconds=60
    )
    raised = RateLimitOverride.objects.create(  # an operator's raise for a higher plan
        tenant=tenant, integration=integration, level="integration", limit=900, window_seconds=60
    )
    for override, code in (
        (tenant_level, "tenant_limit_operator_only"),
        (raised, "operator_override"),
    ):
        patched = api.patch(f"{URL}{override.pk}/", {"limit": HUGE}, format="json")
        deleted = api.delete(f"{URL}{override.pk}/")
        assert (patched.status_code, deleted.status_code) == (403, 403)
        assert patched.json()["code"] == deleted.json()["code"] == code
        override.refresh_from_db()
        assert override.limit in (100, 900)
    listed = {row["id"]: row for row in api.get(URL).json()["results"]}
    assert listed[str(tenant_level.pk)]["set_by"] == "operator"
    # Moving one of its own overrides to the tenant level is refused the same way.
    own = post(
        api,
        integration=str(integration.pk),
        level="operation",
        operation="fetch",
        limit=5,
        window_seconds=60,
    )
    assert own.status_code == 201 and own.json()["set_by"] == "tenant"
    moved = api.patch(
        f"{URL}{own.json()['id']}/",
        {"level": "tenant", "integration": None, "operation": ""},
        format="json",
    )
    assert moved.status_code == 403 and moved.json()["code"] == "tenant_limit_operator_only"


@pytest.mark.parametrize(
    "level, operation, limit, window, allowed",
    [
        ("integration", "", 300, 60, True),  # generic_rest documents 300 / 60 s
        ("integration", "", 301, 60, False),
        ("integration", "", 150, 30, True),  # two windows of 30 s: at most 300 a minute
        ("integration", "", 151, 30, False),
        ("integration", "", 100, 40, True),  # 40 s windows: at most 200 in any minute
        ("integration", "", 160, 40, False),  # ... but 320 here
        ("integration", "", 300, 120, True),  # never more than 300 in any minute
        ("integration", "", 301, 120, False),
        ("operation", "fetch", 10, 60, True),
        ("operation", "fetch", HUGE, 60, False),
    ],
)
def test_api_overrides_may_only_lower_the_providers_documented_limit(
    api, tenant, level, operation, limit, window, allowed
):
    integration = IntegrationFactory(tenant=tenant, provider="generic_rest")
    response = post(
        api,
        integration=str(integration.pk),
        level=level,
        operation=operation,
        limit=limit,
        window_seconds=window,
    )
    if allowed:
        assert response.status_code == 201, response.json()
        return
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "limit_above_provider_limit"
    assert body["details"]["provider_limit"] == {"limit": 300, "window_seconds": 60.0}
    assert body["details"]["integration"] == str(integration.pk)
    assert not RateLimitOverride.objects.exists()


def test_a_tenant_wide_api_override_must_fit_every_integrations_provider(api, tenant):
    IntegrationFactory(tenant=tenant, provider="generic_rest")  # 300 / 60 s
    github = IntegrationFactory(tenant=tenant, provider="github")  # 5000 / 3600 s
    response = post(api, level="integration", limit=300, window_seconds=60)
    assert response.status_code == 400
    assert response.json()["details"]["integration"] == str(github.pk)
    assert post(api, level="integration", limit=80, window_seconds=60).status_code == 201


def test_raising_an_own_override_above_the_provider_limit_is_refused(api, tenant):
    integration = IntegrationFactory(tenant=tenant, provider="generic_rest")
    created = post(
        api, integration=str(integration.pk), level="integration", limit=50, window_seconds=60
    ).json()
    response = api.patch(f"{URL}{created['id']}/", {"limit": 5000}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "limit_above_provider_limit"
    assert api.patch(f"{URL}{created['id']}/", {"limit": 60}, format="json").status_code == 200
    assert api.delete(f"{URL}{created['id']}/").status_code == 204  # its own: back to default


def test_a_tenant_set_override_above_its_bound_never_applies(tenant):
    """Policy resolution: whatever reached the table (a row saved before these checks, an
    integration whose provider limit dropped since), a tenant's override only ever lowers."""
    integration = IntegrationFactory(tenant=tenant, provider="generic_rest")
    for level, operation in (("tenant", ""), ("integration", ""), ("operation", "fetch")):
        RateLimitOverride.objects.create(
            tenant=tenant,
            integration=None if level == "tenant" else integration,
            level=level,
            operation=operation,
            limit=HUGE,
            window_seconds=60,
            set_by="tenant",
        )
    policy = resolve_policy(integration)
    assert (policy.tenant.limit, policy.integration.limit) == (5000, 300)
    assert policy.for_operation("fetch").limit == 200
    RateLimitOverride.objects.filter(level="integration").update(limit=20)
    assert resolve_policy(integration).integration.limit == 20  # lowering applies


def test_an_operator_sets_any_tenant_limit_in_the_admin(admin_client, tenant):
    response = admin_client.post(
        "/admin/ratelimit/ratelimitoverride/add/",
        {"tenant": str(tenant.pk), "level": "tenant", "limit": 20000, "window_seconds": 60},
    )
    assert response.status_code == 302
    override = RateLimitOverride.objects.get()
    assert override.set_by == "operator"
    assert resolve_policy(IntegrationFactory(tenant=tenant)).tenant.limit == 20000


def test_within_is_never_looser_in_any_window_of_the_bound():
    bound = Limit(300, 60)
    assert within(Limit(300, 60), bound) and within(Limit(5, 1), bound)
    assert not within(Limit(6, 1), bound)  # 360 a minute
    assert not within(Limit(200, 45), bound)  # two 45 s windows fit in a minute: 400
    assert within(Limit(300, 86_400), bound) and not within(Limit(301, 86_400), bound)
