"""The outbound guard: which addresses a request may reach, and what follows a redirect.

No packet leaves this machine (tests/support/egress.py): names resolve through a fake
resolver, and every socket ``connect`` is recorded and refused unless it targets the test's
own loopback server. A "public" address is therefore only ever *attempted*, never reached.
"""

from __future__ import annotations

import pytest
import requests

from castiel.http import OutboundClient, RedirectRefusedError, SsrfBlockedError, TransportError
from credentials.types.base import HeaderAuth
from tests.support.egress import Egress
from tests.support.httpserver import running_server

pytestmark = pytest.mark.embedded

PUBLIC = "93.184.216.34"

# Every range that is not globally routable, directly or wrapped in an IPv6 address.
BLOCKED = [
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "0.0.0.0",  # noqa: S104 - an address under test, not a bind
    "169.254.169.254",  # link-local: cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "100.100.100.200",  # carrier-grade NAT: a cloud metadata address
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",  # link-local
    "fc00::1",  # unique local
    "fd00:ec2::254",  # unique local: a cloud metadata address
    "fec0::1",  # deprecated site-local
    "ff02::1",  # multicast
    "ff0e::1",  # global-scope multicast
    "100::1",  # discard
    "2001:db8::1",  # documentation
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:100.100.100.200",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:6464:64c8::1",  # 6to4 of 100.100.100.200
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::6464:64c8",  # NAT64 of 100.100.100.200
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo (client 127.0.0.1)
]


@pytest.fixture
def egress(monkeypatch) -> Egress:
    return Egress().install(monkeypatch)


@pytest.fixture
def no_allowed_networks(settings):
    settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = []


def _literal(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


class TestAddressPolicy:
    @pytest.mark.parametrize("ip", BLOCKED)
    def test_a_name_resolving_to_a_non_global_address_is_refused(
        self, egress, no_allowed_networks, ip
    ):
        egress.answer("internal.test", [ip])
        with pytest.raises(SsrfBlockedError, match="internal address"):
            OutboundClient(provider="test").get("http://internal.test/x")
        assert egress.connects == []

    @pytest.mark.parametrize("ip", BLOCKED)
    def test_a_non_global_address_literal_is_refused(self, egress, no_allowed_networks, ip):
        with pytest.raises(SsrfBlockedError, match="internal address"):
            OutboundClient(provider="test").get(f"http://{_literal(ip)}/x")
        assert egress.connects == []

    def test_one_internal_answer_among_public_ones_refuses_the_name(
        self, egress, no_allowed_networks
    ):
        egress.answer("mixed.test", [PUBLIC, "100.100.100.200"])
        with pytest.raises(SsrfBlockedError):
            OutboundClient(provider="test").get("http://mixed.test/x")
        assert egress.connects == []

    def test_a_public_address_is_what_the_connection_goes_to(self, egress, no_allowed_networks):
        egress.answer("public.test", [PUBLIC])
        with pytest.raises(TransportError):  # the test's connect refuses it: nothing is sent
            OutboundClient(provider="test").get("http://public.test/x")
        assert egress.connects == [(PUBLIC, 80)]
        assert egress.lookups == ["public.test"]

    def test_allowed_networks_open_a_range(self, egress, settings):
        settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = ["100.64.0.0/10"]
        egress.answer("cgnat.test", ["100.100.100.200"])
        with pytest.raises(TransportError):
            OutboundClient(provider="test").get("http://cgnat.test/x")
        assert egress.connects == [("100.100.100.200", 80)]

    def test_a_redirect_hop_to_a_blocked_name_is_refused(
        self, egress, http_server, no_allowed_networks, settings
    ):
        settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
        egress.allow(http_server.url)
        egress.answer("metadata.test", ["100.100.100.200"])
        http_server.route("GET", "/away")(
            lambda r: (302, {"Location": "http://metadata.test/latest"}, {})
        )
        with pytest.raises(SsrfBlockedError):
            OutboundClient(provider="test", base_url=http_server.url).get("/away")
        assert egress.connects == [("127.0.0.1", int(http_server.url.rsplit(":", 1)[1]))]


class TestResolveOnce:
    def test_a_rebinding_answer_cannot_reach_loopback(
        self, egress, http_server, no_allowed_networks
    ):
        port = int(http_server.url.rsplit(":", 1)[1])
        egress.allow(port)
        egress.answer("rebind.test", [PUBLIC], ["127.0.0.1"])
        http_server.route("GET", "/x")(lambda r: (200, {}, {"reached": True}))
        with pytest.raises(TransportError):
            OutboundClient(provider="test").get(f"http://rebind.test:{port}/x")
        assert http_server.requests == []
        assert egress.connects == [(PUBLIC, port)]

    def test_a_name_that_does_not_resolve_is_refused(
        self, egress, http_server, no_allowed_networks
    ):
        port = int(http_server.url.rsplit(":", 1)[1])
        egress.allow(port)
        egress.answer("flaky.test", None, ["127.0.0.1"])
        http_server.route("GET", "/x")(lambda r: (200, {}, {"reached": True}))
        with pytest.raises(TransportError) as info:
            OutboundClient(provider="test").get(f"http://flaky.test:{port}/x")
        assert http_server.requests == []
        assert egress.connects == []
        assert egress.lookups == ["flaky.test"]
        chain, link = [], info.value
        while link is not None:
            chain.append(type(link).__name__)
            link = link.__cause__ or link.__context__
        assert "NameResolutionError" in chain  # still reported as a DNS failure

    def test_host_header_and_tls_name_stay_the_name(self, egress, tmp_path):
        from tests.credentials.tls import make_tls_material

        tls = make_tls_material(tmp_path / "tls", server_names=("api.test",))
        seen_sni = []
        context = tls.server_context()
        context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
        with running_server(ssl_context=context) as server:
            port = int(server.url.rsplit(":", 1)[1])
            egress.allow(port)
            egress.answer("api.test", ["127.0.0.1"])
            egress.answer("wrong.test", ["127.0.0.1"])
            server.route("GET", "/x")(lambda r: (200, {}, {"ok": True}))
            session = requests.Session()
            session.verify = tls.ca_path
            client = OutboundClient(provider="test", session=session)
            assert client.get(f"https://api.test:{port}/x").json() == {"ok": True}
            assert server.requests[0].headers["host"] == f"api.test:{port}"
            assert seen_sni == ["api.test"]
            with pytest.raises(TransportError):  # the certificate is checked against the name
                client.get(f"https://wrong.test:{port}/x")
            assert len(server.requests) == 1


class TestRedirectCredentials:
    def test_an_api_key_header_does_not_follow_to_another_origin(self, http_server):
        auth = HeaderAuth(headers={"X-API-Key": "k-secret-1"})
        with running_server() as other:
            other.route("GET", "/landing")(lambda r: (200, {}, {}))
            http_server.route("GET", "/away")(
                lambda r: (302, {"Location": f"{other.url}/landing"}, {})
            )
            OutboundClient(provider="test", base_url=http_server.url, auth=auth).get("/away")
            assert http_server.requests[0].headers["x-api-key"] == "k-secret-1"
            assert "x-api-key" not in other.requests[0].headers

    def test_a_query_parameter_key_does_not_follow_to_another_origin(self, http_server):
        auth = HeaderAuth(params={"api_key": "k-secret-2"})
        with running_server() as other:
            other.route("GET", "/landing")(lambda r: (200, {}, {}))
            http_server.route("GET", "/away")(
                lambda r: (302, {"Location": f"{other.url}/landing?page=2"}, {})
            )
            OutboundClient(provider="test", base_url=http_server.url, auth=auth).get("/away")
            assert http_server.requests[0].query["api_key"] == ["k-secret-2"]
            assert other.requests[0].query == {"page": ["2"]}

    def test_a_same_origin_redirect_applies_the_credential_once_to_the_new_url(self, http_server):
        auth = HeaderAuth(headers={"X-API-Key": "k-3"}, params={"api_key": "k-3"})
        http_server.route("GET", "/old")(lambda r: (301, {"Location": "/new?page=2"}, {}))
        http_server.route("GET", "/new")(lambda r: (200, {}, {"moved": True}))
        client = OutboundClient(provider="test", base_url=http_server.url, auth=auth)
        assert client.get("/old").json() == {"moved": True}
        second = http_server.requests[1]
        assert second.headers["x-api-key"] == "k-3"
        assert second.query == {"page": ["2"], "api_key": ["k-3"]}

    def test_credentials_do_not_come_back_after_leaving_the_origin(self, http_server):
        auth = HeaderAuth(headers={"X-API-Key": "k-secret-4"})
        with running_server() as other:
            other.route("GET", "/bounce")(
                lambda r: (302, {"Location": f"{http_server.url}/final"}, {})
            )
            http_server.route("GET", "/away")(
                lambda r: (302, {"Location": f"{other.url}/bounce"}, {})
            )
            http_server.route("GET", "/final")(lambda r: (200, {}, {}))
            OutboundClient(provider="test", base_url=http_server.url, auth=auth).get("/away")
            assert "x-api-key" not in other.requests[0].headers
            assert "x-api-key" not in http_server.requests[1].headers

    def test_a_caller_authorization_header_does_not_follow_a_307_post_but_the_body_does(
        self, http_server
    ):
        with running_server() as other:
            other.route("POST", "/landing")(lambda r: (200, {}, {}))
            http_server.route("POST", "/away")(
                lambda r: (307, {"Location": f"{other.url}/landing"}, {})
            )
            OutboundClient(provider="test", base_url=http_server.url).post(
                "/away", json={"n": 1}, headers={"Authorization": "Bearer t-5"}
            )
            assert "authorization" not in other.requests[0].headers
            assert other.requests[0].json() == {"n": 1}

    def test_an_https_to_http_downgrade_of_an_authenticated_request_is_refused(
        self, egress, tmp_path
    ):
        from tests.credentials.tls import make_tls_material

        tls = make_tls_material(tmp_path / "tls")
        with running_server(ssl_context=tls.server_context()) as server:
            port = int(server.url.rsplit(":", 1)[1])
            egress.allow(port)
            server.route("GET", "/away")(
                lambda r: (302, {"Location": f"http://127.0.0.1:{port}/landing"}, {})
            )
            session = requests.Session()
            session.verify = tls.ca_path
            client = OutboundClient(
                provider="test",
                base_url=server.url,
                session=session,
                auth=HeaderAuth(headers={"Authorization": "Bearer t-6"}),
            )
            with pytest.raises(RedirectRefusedError):
                client.get("/away")
            assert len(egress.connects) == 1  # nothing was sent in clear text

    def test_an_unauthenticated_downgrade_is_followed(self, egress, tmp_path, http_server):
        from tests.credentials.tls import make_tls_material

        tls = make_tls_material(tmp_path / "tls")
        egress.allow(http_server.url)
        http_server.route("GET", "/landing")(lambda r: (200, {}, {"plain": True}))
        with running_server(ssl_context=tls.server_context()) as server:
            egress.allow(server.url)
            server.route("GET", "/away")(
                lambda r: (302, {"Location": f"{http_server.url}/landing"}, {})
            )
            session = requests.Session()
            session.verify = tls.ca_path
            client = OutboundClient(provider="test", base_url=server.url, session=session)
            assert client.get("/away").json() == {"plain": True}

    def test_a_client_certificate_is_not_presented_to_another_origin(self, tmp_path):
        import ssl

        from credentials.types.mtls import MtlsAuth
        from tests.credentials.tls import make_tls_material

        tls = make_tls_material(tmp_path / "tls")
        auth = MtlsAuth({"certificate": tls.client_cert_pem, "private_key": tls.client_key_pem})
        contexts = []
        for _ in range(2):
            context = tls.server_context()
            context.verify_mode = ssl.CERT_OPTIONAL  # record a certificate, don't demand one
            context.load_verify_locations(tls.ca_path)
            contexts.append(context)
        with running_server(ssl_context=contexts[0]) as first:
            with running_server(ssl_context=contexts[1]) as other:
                other.route("GET", "/landing")(lambda r: (200, {}, {}))
                first.route("GET", "/away")(
                    lambda r: (302, {"Location": f"{other.url}/landing"}, {})
                )
                session = requests.Session()
                session.verify = tls.ca_path
                client = OutboundClient(
                    provider="test", base_url=first.url, session=session, auth=auth
                )
                client.get("/away")
                assert first.requests[0].client_cert is not None
                assert other.requests[0].client_cert is None
