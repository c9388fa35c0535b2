"""The outbound client against a real local HTTP server."""

from __future__ import annotations

import logging

import pytest
import requests

from castiel.http import HttpError, OutboundClient, RateLimitedError, SsrfBlockedError
from castiel.http.errors import TransportError, parse_retry_after
from castiel.http.retry import full_jitter_delay
from castiel.observability.context import bound
from tests.support.services import free_port


@pytest.fixture
def client(http_server):
    return OutboundClient(provider="test", base_url=http_server.url)


def reply(status, body=None, **headers):
    return lambda request: (status, headers, body if body is not None else {"ok": True})


class TestClassification:
    @pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
    def test_transient_statuses_are_retryable(self, client, http_server, status):
        http_server.route("GET", "/x")(reply(status))
        with pytest.raises(HttpError) as info:
            client.get("/x")
        assert info.value.retryable and info.value.status == status

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
    def test_other_client_errors_are_permanent(self, client, http_server, status):
        http_server.route("GET", "/x")(reply(status, {"message": "nope"}))
        with pytest.raises(HttpError) as info:
            client.get("/x")
        assert not info.value.retryable
        assert "nope" in info.value.body_excerpt

    def test_429_is_a_rate_limit_with_retry_after(self, client, http_server):
        http_server.route("GET", "/x")(reply(429, **{"Retry-After": "7"}))
        with pytest.raises(RateLimitedError) as info:
            client.get("/x")
        assert info.value.retryable and info.value.retry_after == 7

    def test_github_403_with_exhausted_quota_is_a_rate_limit_not_a_permission_error(
        self, client, http_server
    ):
        # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
        http_server.route("GET", "/x")(
            reply(
                403,
                {"message": "API rate limit exceeded for user ID 1."},
                **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9999999999"},
            )
        )
        with pytest.raises(RateLimitedError) as info:
            client.get("/x")
        assert info.value.retryable and info.value.retry_after > 0

    def test_connection_refused_is_a_retryable_transport_error(self):
        dead = OutboundClient(provider="test", base_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(TransportError) as info:
            dead.get("/x")
        assert info.value.retryable

    def test_timeout_is_a_retryable_transport_error(self, http_server):
        import time

        http_server.route("GET", "/slow")(lambda r: (time.sleep(1), (200, {}, {}))[1])
        slow = OutboundClient(provider="test", base_url=http_server.url, timeout=(1, 0.2))
        with pytest.raises(TransportError, match="timed out"):
            slow.get("/slow")


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_full_jitter_stays_within_the_ceiling_and_honours_retry_after():
    delays = [full_jitter_delay(3, base=1, cap=100) for _ in range(200)]
    assert all(0 <= d <= 4 for d in delays) and len(set(delays)) > 100
    assert full_jitter_delay(1, base=1, retry_after=30) >= 30
    assert all(full_jitter_delay(30, base=1, cap=10) <= 10 for _ in range(50))


class TestAuthAndHeaders:
    def test_auth_is_applied_and_401_refreshes_once_then_retries(self, http_server):
        tokens = iter(["old", "new"])

        class TokenAuth(requests.auth.AuthBase):
            token = next(tokens)
            refreshes = 0

            def __call__(self, request):
                request.headers["Authorization"] = f"Bearer {self.token}"
                return request

            def on_unauthorized(self, response):
                self.refreshes += 1
                self.token = next(tokens)
                return True

        @http_server.route("GET", "/me")
        def me(request):
            if request.headers["authorization"] != "Bearer new":
                return 401, {}, {"error": "expired"}
            return 200, {}, {"me": 1}

        auth = TokenAuth()
        client = OutboundClient(provider="test", base_url=http_server.url, auth=auth)
        assert client.get("/me").json() == {"me": 1}
        assert auth.refreshes == 1
        assert [r.headers["authorization"] for r in http_server.requests] == [
            "Bearer old",
            "Bearer new",
        ]

    def test_a_second_401_is_not_retried_again(self, http_server):
        class Always(requests.auth.AuthBase):
            calls = 0

            def __call__(self, request):
                return request

            def on_unauthorized(self, response):
                self.calls += 1
                return True

        http_server.route("GET", "/me")(reply(401))
        auth = Always()
        with pytest.raises(HttpError):
            OutboundClient(provider="test", base_url=http_server.url, auth=auth).get("/me")
        assert auth.calls == 1 and len(http_server.requests) == 2

    def test_correlation_id_travels_with_the_request(self, client, http_server):
        http_server.route("GET", "/x")(reply(200))
        with bound(correlation_id="corr-out-1"):
            client.get("/x")
        assert http_server.requests[0].headers["x-correlation-id"] == "corr-out-1"

    def test_query_strings_are_never_logged(self, client, http_server, caplog):
        http_server.route("GET", "/x")(reply(200))
        with caplog.at_level(logging.INFO):
            client.get("/x", params={"api_key": "super-secret-query-key"})
        assert http_server.requests[0].query["api_key"] == ["super-secret-query-key"]
        assert "super-secret-query-key" not in caplog.text
        assert "outbound.request" in caplog.text


class TestRedirectsAndSsrf:
    def test_same_origin_redirect_keeps_auth(self, client, http_server):
        http_server.route("GET", "/old")(reply(301, {}, Location="/new"))
        http_server.route("GET", "/new")(reply(200, {"moved": True}))
        response = client.get("/old", headers={"Authorization": "Bearer t"})
        assert response.json() == {"moved": True}
        assert http_server.requests[1].headers["authorization"] == "Bearer t"

    def test_cross_origin_redirect_drops_auth(self, client, http_server):
        from tests.support.httpserver import running_server

        with running_server() as other:
            other.route("GET", "/landing")(reply(200))
            http_server.route("GET", "/away")(reply(302, {}, Location=f"{other.url}/landing"))
            client.get("/away", headers={"Authorization": "Bearer secret-token"})
            assert "authorization" not in other.requests[0].headers

    def test_internal_addresses_are_blocked_unless_allowed(self, http_server, settings):
        settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []
        client = OutboundClient(provider="test", base_url=http_server.url)
        with pytest.raises(SsrfBlockedError, match="internal address"):
            client.get("/x")
        assert http_server.requests == []

    def test_redirect_into_an_internal_network_is_blocked(self, settings):
        settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []
        client = OutboundClient(provider="test")
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "file:///etc/passwd",
        ):
            with pytest.raises(SsrfBlockedError):
                client.get(url)
