"""Operations on an integration through the API and the admin: test connection, pause,
resume; and the bad input both reject (unknown provider, missing or wrong config)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from integrations.models import Integration
from syncing.models import OutboundChange
from tests.integrations.providers.support import answer, make_integration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

TOKEN = ("bearer_token", {"token": "test-token-not-real"}, {})
CHANGELIST = "/admin/integrations/integration/"


@pytest.fixture
def operator(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-ops-123"))
    return client


@pytest.fixture
def rsps():
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# -- test connection --------------------------------------------------------------------------


def test_api_test_connection_reports_success(api, tenant, rsps):
    integration = make_integration(tenant, "github", credential=TOKEN)
    answer(rsps, "GET", "https://api.github.com/user", "github", "user")
    response = api.post(f"/api/v1/integrations/{integration.pk}/test-connection/")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["code"]) == (True, "ok")
    assert body["message"] == "Connected to GitHub as mona-dev."
    assert body["details"]["login"] == "mona-dev" and body["details"]["missing_scopes"] == []


def test_api_test_connection_reports_a_rejected_credential(api, tenant, rsps):
    integration = make_integration(tenant, "github", credential=TOKEN)
    answer(rsps, "GET", "https://api.github.com/user", "github", "error_bad_credentials")
    body = api.post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (body["ok"], body["code"]) == (False, "invalid_credentials")
    assert "Bad credentials" in body["message"] and "test-token-not-real" not in str(body)
    assert body["details"]["status"] == 401


def test_api_test_connection_without_credential(api, tenant):
    integration = make_integration(tenant, "hubspot")
    body = api.post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (body["ok"], body["code"]) == (False, "no_credential")
    assert "connect with OAuth2" in body["message"]


def test_api_test_connection_of_another_tenants_integration_is_not_found(other_api, tenant):
    integration = make_integration(tenant, "github", credential=TOKEN)
    response = other_api.post(f"/api/v1/integrations/{integration.pk}/test-connection/")
    assert response.status_code == 404


def test_a_provider_whose_folder_is_gone_is_reported(api, tenant):
    integration = make_integration(tenant, "github")
    Integration.objects.filter(pk=integration.pk).update(provider="acme_gone")
    body = api.post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (body["ok"], body["code"]) == (False, "unknown_provider")
    assert "acme_gone" in body["message"] and "github" in body["message"]


def test_a_generic_rest_connection_is_tested_with_a_get(api, tenant, http_server):
    http_server.route("GET", "/contacts")(lambda request: (200, {}, []))
    integration = make_integration(
        tenant,
        "generic_rest",
        {"base_url": http_server.url, "list_path": "/contacts"},
        credential=TOKEN,
    )
    body = api.post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (body["ok"], body["code"]) == (True, "ok"), body
    assert http_server.requests[-1].path == "/contacts"
    assert http_server.requests[-1].headers["authorization"] == "Bearer test-token-not-real"


def test_admin_action_shows_each_result(operator, tenant, rsps):
    good = make_integration(tenant, "github", credential=TOKEN, name="Good")
    bare = make_integration(tenant, "slack", name="Bare")
    answer(rsps, "GET", "https://api.github.com/user", "github", "user")
    response = operator.post(
        CHANGELIST,
        {"action": "test_connection", "_selected_action": [str(good.pk), str(bare.pk)]},
        follow=True,
    )
    html = response.content.decode()
    assert "Good (github): Connected to GitHub as mona-dev." in html
    assert "Bare (slack): " in html and "[no_credential]" in html


# -- pause / resume ----------------------------------------------------------------------------


def test_pause_and_resume_through_the_api(api, tenant):
    integration = make_integration(tenant, "github")
    response = api.post(
        f"/api/v1/integrations/{integration.pk}/pause/", {"reason": "migration"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["status_reason"]) == (
        "paused",
        "Paused by an operator: migration",
    )
    integration.refresh_from_db()
    assert not integration.is_operational
    response = api.post(f"/api/v1/integrations/{integration.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "active"
    integration.refresh_from_db()
    assert integration.is_operational and integration.status_reason == ""


def test_resume_refuses_an_integration_waiting_for_reauthorisation(api, tenant):
    integration = make_integration(tenant, "github")
    Integration.objects.filter(pk=integration.pk).update(
        status="reauth_required", status_reason="Credential needs re-authorisation"
    )
    for action in ("resume", "pause"):
        response = api.post(f"/api/v1/integrations/{integration.pk}/{action}/")
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_state"
    integration.refresh_from_db()
    assert integration.status == "reauth_required"


@pytest.mark.django_db(transaction=True)
def test_a_paused_integration_holds_its_pushes_until_resumed(tenant, pushes, rsps):
    from integrations.services import integration_pause, integration_resume
    from syncing.outbound import local_changes
    from tests.syncing.helpers import make_task
    from tests.syncing.outbound_support import push_all

    integration = make_integration(tenant, "hubspot", credential=TOKEN)
    make_task(integration, "contacts")
    integration_pause(integration=integration)
    change = local_changes.record_create(
        integration=integration, entity_type="contacts", data={"email": "held@example.com"}
    ).change
    post = answer(
        rsps, "POST", "https://api.hubapi.com/crm/v3/objects/contacts", "hubspot", "contact_create"
    )
    push_all(pushes)
    assert post.call_count == 0
    assert OutboundChange.objects.get(pk=change.pk).status == "pending"
    integration_resume(integration=integration)
    assert push_all(pushes) == {"succeeded": 1}
    assert post.call_count == 1


def test_admin_pause_and_resume(operator, tenant):
    integration = make_integration(tenant, "stripe")
    operator.post(CHANGELIST, {"action": "pause", "_selected_action": [str(integration.pk)]})
    integration.refresh_from_db()
    assert integration.status == "paused"
    operator.post(CHANGELIST, {"action": "resume", "_selected_action": [str(integration.pk)]})
    integration.refresh_from_db()
    assert integration.status == "active"


# -- bad input ---------------------------------------------------------------------------------


def test_api_rejects_an_unknown_provider_naming_the_known_ones(api):
    response = api.post(
        "/api/v1/integrations/", {"provider": "acme_crm", "name": "X"}, format="json"
    )
    assert response.status_code == 400
    message = response.json()["details"]["provider"][0]
    assert "acme_crm" in message and "salesforce" in message


def test_api_rejects_bad_provider_config_values_per_field(api):
    response = api.post(
        "/api/v1/integrations/",
        {
            "provider": "salesforce",
            "name": "CRM",
            "config": {"instance_url": "http://acme.my.salesforce.com", "api_version": "66"},
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["details"]["config"]
    assert set(errors) == {"instance_url", "api_version"}
    response = api.post(
        "/api/v1/integrations/",
        {"provider": "github", "name": "GH", "config": {"repository": "not a repo"}},
        format="json",
    )
    assert response.json()["details"]["config"]["repository"].startswith("repository must be")


def test_admin_rejects_an_unknown_provider_and_missing_config(operator, tenant):
    page = operator.get(f"{CHANGELIST}add/").content.decode()
    assert '<option value="salesforce">Salesforce</option>' in page
    base = {"tenant": str(tenant.pk), "name": "CRM", "enabled": "on", "status": "active"}
    response = operator.post(f"{CHANGELIST}add/", {**base, "provider": "acme_crm", "config": "{}"})
    assert "Select a valid choice. acme_crm is not one of the available choices." in (
        response.content.decode()
    )
    response = operator.post(
        f"{CHANGELIST}add/", {**base, "provider": "salesforce", "config": "{}"}
    )
    assert "Salesforce integrations need &#x27;instance_url&#x27; in their config." in (
        response.content.decode()
    )
    response = operator.post(
        f"{CHANGELIST}add/",
        {
            **base,
            "provider": "salesforce",
            "config": '{"instance_url": "https://test.salesforce.com"}',
        },
    )
    assert "login host" in response.content.decode()
    assert not Integration.objects.exists()
