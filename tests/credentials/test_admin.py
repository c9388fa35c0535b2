"""Operators: masked credentials, "refresh now", "revoke", and the OAuth2 connect button."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from credentials.models import Credential, StoredSecret, TokenRefreshAudit
from tests.credentials.factories import make_api_key_credential
from tests.factories import IntegrationFactory

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

CHANGELIST = "/admin/credentials/credential/"


@pytest.fixture
def operator(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-ops-123"))
    return client


def test_changelist_shows_credentials_masked_with_a_connect_button(operator, tenant):
    credential = make_api_key_credential(
        IntegrationFactory(tenant=tenant), value="admin-visible-never"
    )
    response = operator.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "admin-visible-never" not in html
    # The secret's fields, masked, are on the credential's page (the list stays narrow).
    page = operator.get(f"{CHANGELIST}{credential.pk}/change/").content.decode()
    assert "api_key: ********" in page and "admin-visible-never" not in page
    assert "Connect with OAuth2" in html and "/admin/credentials/credential/connect/" in html
    assert "Add credential" not in html  # secrets are entered through the API or connect


def test_connect_button_sends_the_operator_to_the_provider_and_back(
    operator, oauth_integration, oauth_server
):
    form = operator.get("/admin/credentials/credential/connect/")
    assert oauth_integration.name in form.content.decode()
    response = operator.post(
        "/admin/credentials/credential/connect/",
        {"integration": str(oauth_integration.pk), "client_secret": oauth_server.client_secret},
    )
    assert response.status_code == 302
    authorize_url = response["Location"]
    assert authorize_url.startswith(oauth_server.authorize_url)
    consent = oauth_server.browser().get(authorize_url, allow_redirects=False)
    callback = urlsplit(consent.headers["Location"])
    back = operator.get(f"{callback.path}?{callback.query}")
    assert back.status_code == 302 and back["Location"] == CHANGELIST
    assert Credential.objects.get(integration=oauth_integration).status == "active"


def test_connect_form_reports_configuration_problems(operator, tenant):
    broken = IntegrationFactory(
        tenant=tenant, provider="generic_rest", config={"base_url": "http://x", "oauth": {}}
    )
    response = operator.post(
        "/admin/credentials/credential/connect/", {"integration": str(broken.pk)}
    )
    assert response.status_code == 200
    assert "has no OAuth2 client_id" in response.content.decode()


def test_refresh_now_action(operator, connect, oauth_integration):
    connect(oauth_integration)
    credential = Credential.objects.get()
    response = operator.post(
        CHANGELIST,
        {"action": "refresh_now", "_selected_action": [str(credential.pk)]},
        follow=True,
    )
    assert "refreshed" in response.content.decode()
    audit = TokenRefreshAudit.objects.get()
    assert (audit.trigger, audit.outcome) == ("manual", "refreshed")
    change = operator.get(f"{CHANGELIST}{credential.pk}/change/")
    assert "refresh token rotated" in change.content.decode()  # the audit inline


def test_revoke_action(operator, tenant, django_capture_on_commit_callbacks):
    credential = make_api_key_credential(IntegrationFactory(tenant=tenant))
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            CHANGELIST,
            {"action": "revoke", "_selected_action": [str(credential.pk)]},
            follow=True,
        )
    assert "1 credential revoked" in response.content.decode()
    credential.refresh_from_db()
    assert credential.status == "revoked"
    assert not StoredSecret.objects.filter(name=credential.secret_name).exists()
