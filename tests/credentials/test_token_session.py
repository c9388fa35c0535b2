"""Token sessions share one connection pool and read proxy settings as requests does."""

from __future__ import annotations

import pytest
import requests

from castiel.http import SsrfBlockedError, TransportError
from credentials import oauth


def session() -> oauth.TokenEndpointSession:
    return oauth.TokenEndpointSession(client_id="client", provider="test")


def test_every_token_session_uses_the_one_shared_pool():
    first, second = session(), session()
    for url in ("https://login.example.com/token", "http://127.0.0.1:8000/o/token/"):
        assert first.get_adapter(url) is second.get_adapter(url) is oauth._SHARED_ADAPTER


def test_environment_settings_are_requests_own_answer(monkeypatch):
    monkeypatch.setattr(oauth, "_env_settings", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    url = "https://login.example.com/token"
    expected = requests.Session().merge_environment_settings(url, {}, None, None, None)
    assert session().merge_environment_settings(url, {}, None, None, None) == expected
    assert expected["proxies"]["https"] == "http://proxy.internal:3128"
    local = session().merge_environment_settings("http://127.0.0.1/o/token/", {}, None, None, None)
    assert "http" not in local["proxies"]  # NO_PROXY applies per origin


def test_the_answer_is_reused_within_a_minute_and_read_again_after(monkeypatch):
    monkeypatch.setattr(oauth, "_env_settings", {})
    url = "https://login.example.com/token"
    monkeypatch.setenv("HTTPS_PROXY", "http://first:3128")
    assert session().merge_environment_settings(url, {}, None, None, None)["proxies"]["https"] == (
        "http://first:3128"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://second:3128")
    again = session().merge_environment_settings(url, {}, None, None, None)
    assert again["proxies"]["https"] == "http://first:3128"  # cached for this origin
    again["proxies"]["https"] = "mutated by a caller"
    cached = session().merge_environment_settings(url, {}, None, None, None)
    assert cached["proxies"]["https"] == "http://first:3128"  # callers get a copy
    for key in oauth._env_settings:
        stamp, value = oauth._env_settings[key]
        oauth._env_settings[key] = (stamp - oauth._ENV_SETTINGS_TTL - 1, value)
    fresh = session().merge_environment_settings(url, {}, None, None, None)
    assert fresh["proxies"]["https"] == "http://second:3128"


# -- the outbound guard on token requests (no packet leaves this machine: tests/support/egress.py)


@pytest.fixture
def egress(monkeypatch):
    from tests.support.egress import Egress

    return Egress().install(monkeypatch)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.embedded
def test_a_token_request_connects_to_the_address_that_was_checked(egress, http_server, settings):
    settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []
    port = _port(http_server.url)
    egress.allow(port)
    egress.answer("login.test", ["93.184.216.34"], ["127.0.0.1"])  # rebinding
    http_server.route("POST", "/token")(lambda r: (200, {}, {"access_token": "a"}))
    with pytest.raises(TransportError):
        session().fetch_token(f"http://login.test:{port}/token", grant_type="client_credentials")
    assert http_server.requests == []
    assert egress.connects == [("93.184.216.34", port)]


@pytest.mark.embedded
def test_a_token_host_that_does_not_resolve_is_refused(egress, http_server, settings):
    settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []
    port = _port(http_server.url)
    egress.allow(port)
    egress.answer("login.test", None, ["127.0.0.1"])
    http_server.route("POST", "/token")(lambda r: (200, {}, {"access_token": "a"}))
    with pytest.raises(TransportError):
        session().fetch_token(f"http://login.test:{port}/token", grant_type="client_credentials")
    assert http_server.requests == [] and egress.connects == []


@pytest.mark.embedded
@pytest.mark.parametrize("ip", ["100.100.100.200", "fec0::1", "2002:a9fe:a9fe::1"])
def test_a_token_endpoint_on_a_non_global_address_is_refused(egress, settings, ip):
    settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []
    egress.answer("login.test", [ip])
    with pytest.raises(SsrfBlockedError):
        session().fetch_token("https://login.test/token", grant_type="client_credentials")
    assert egress.connects == []


@pytest.mark.embedded
def test_a_token_request_keeps_working_through_the_guard(http_server):
    http_server.route("POST", "/token")(
        lambda r: (200, {}, {"access_token": "a", "token_type": "Bearer"})
    )
    token = session().fetch_token(f"{http_server.url}/token", grant_type="client_credentials")
    assert token["access_token"] == "a"
