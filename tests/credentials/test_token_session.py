"""Token sessions share one connection pool and read proxy settings as requests does."""

from __future__ import annotations

import requests

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
