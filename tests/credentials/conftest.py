"""Fixtures of the credentials tests: the real OAuth2 server, TLS material, integrations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.credentials.oauthserver import OAuthServer, start_oauth_server
from tests.credentials.tls import TlsMaterial, make_tls_material
from tests.factories import IntegrationFactory


@pytest.fixture(scope="session")
def oauth_server(tmp_path_factory) -> OAuthServer:
    """A real django-oauth-toolkit 3.4 authorization server (one per test session)."""
    server = start_oauth_server(tmp_path_factory.mktemp("oauth-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def oauth_integration(tenant, oauth_server):
    return IntegrationFactory(
        tenant=tenant,
        provider="generic_rest",
        name="Generic OAuth",
        config={"base_url": oauth_server.url, "oauth": oauth_server.oauth_config()},
    )


@pytest.fixture
def connect(api, client, oauth_server):
    """Run the whole authorization-code + PKCE flow through Castiel's endpoints."""

    def run(integration, *, client_secret: str | None = None, scopes=None):
        body = {"integration": str(integration.pk)}
        if client_secret is not False:
            body["client_secret"] = client_secret or oauth_server.client_secret
        if scopes is not None:
            body["scopes"] = scopes
        started = api.post("/api/v1/credentials/connect/", body, format="json")
        assert started.status_code == 201, started.content
        authorize_url = started.json()["authorize_url"]
        browser = oauth_server.browser()
        consent = browser.get(authorize_url, allow_redirects=False)
        assert consent.status_code == 302, consent.text[:500]
        location = consent.headers["Location"]
        parts = urlsplit(location)
        assert parts.path == "/oauth/callback/", location
        callback = client.get(f"{parts.path}?{parts.query}")
        return started.json(), callback

    return run
