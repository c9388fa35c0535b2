"""The OTLP exporter sends through the library's urllib3 transport only where that sends what
its requests session would: the same request reaches the collector, TLS is verified with the
CA bundle requests would use (the environment's included), and everything else requests
would add (a proxy, a .netrc login, a CA directory, a credential provider's session) keeps
requests."""

from __future__ import annotations

import pytest
import requests
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
from opentelemetry.sdk.trace.export import SpanExportResult
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from castiel.observability import otlp, tracing
from castiel.observability.otlp_transport import lighter_transport, use_lighter_transport
from tests.observability.otlp_receiver import running_receiver
from tests.observability.test_otlp_encoding import _sdk_spans

ENDPOINT = "http://127.0.0.1:4318/v1/traces"  # never sent to: these exporters only get built
# What a collector reads from the request besides its body (requests and urllib3 each add
# their own Accept, Accept-Encoding, Connection and Host handling, which no collector reads).
READ_BY_A_COLLECTOR = ("content-type", "content-encoding", "user-agent", "x-castiel-tenant")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in (
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE", "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def _built(endpoint: str = ENDPOINT, **kwargs):
    return use_lighter_transport(otlp.exporter_class()(endpoint=endpoint, **kwargs))


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_collector_receives_the_same_request_through_either_transport(monkeypatch, compression):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-castiel-tenant=acme")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    spans = _sdk_spans()
    with running_receiver() as receiver:
        endpoint = f"{receiver.url}/v1/traces"
        lighter = _built(endpoint)
        assert type(lighter._client._transport) is Urllib3HTTPTransport
        assert lighter.export(spans) == SpanExportResult.SUCCESS
        with_requests = otlp.exporter_class()(endpoint=endpoint)
        assert type(with_requests._client._transport) is RequestsHTTPTransport
        assert with_requests.export(spans) == SpanExportResult.SUCCESS
    ours, theirs = receiver.bodies
    assert ours == theirs == otlp.encode_spans(spans)
    sent = [{k: h.get(k) for k in READ_BY_A_COLLECTOR} for h in receiver.headers]
    assert sent[0] == sent[1]
    assert sent[0]["x-castiel-tenant"] == "acme"
    assert sent[0]["content-encoding"] == (None if compression == "none" else "gzip")


def test_an_export_nobody_receives_fails_without_raising(unused_port):
    exporter = _built(f"http://127.0.0.1:{unused_port}/v1/traces", timeout=1)
    assert type(exporter._client._transport) is Urllib3HTTPTransport
    assert exporter.export(_sdk_spans()[:1]) == SpanExportResult.FAILURE


def _pool_settings(exporter) -> dict:
    return exporter._client._transport._pool.connection_pool_kw


def test_tls_is_verified_against_the_ca_bundle_requests_would_use(monkeypatch, tmp_path):
    assert _pool_settings(_built())["ca_certs"] == DEFAULT_CA_BUNDLE_PATH
    assert _pool_settings(_built())["cert_reqs"] == "CERT_REQUIRED"
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(ca))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(key))
    configured = _pool_settings(_built())
    assert (configured["ca_certs"], configured["cert_file"], configured["key_file"]) == (
        str(ca),
        str(cert),
        str(key),
    )


@pytest.mark.parametrize(
    "variable, value",
    [
        ("HTTP_PROXY", "http://127.0.0.1:3128"),
        ("ALL_PROXY", "http://127.0.0.1:3128"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ssl/certs"),  # a CA directory
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/certs"),
        ("CURL_CA_BUNDLE", "/etc/ssl/certs"),
    ],
)
def test_whatever_requests_would_add_keeps_requests(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert type(_built()._client._transport) is RequestsHTTPTransport


@pytest.mark.parametrize(
    "variables",
    [
        {"REQUESTS_CA_BUNDLE": "env.pem"},
        {"CURL_CA_BUNDLE": "curl.pem"},
        {"REQUESTS_CA_BUNDLE": "env.pem", "CURL_CA_BUNDLE": "curl.pem"},
        {"REQUESTS_CA_BUNDLE": "env.pem", "OTEL_EXPORTER_OTLP_CERTIFICATE": "configured.pem"},
        {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "curl.pem"},
        {"OTEL_EXPORTER_OTLP_CERTIFICATE": "configured.pem"},
    ],
)
def test_a_ca_bundle_from_the_environment_is_the_one_requests_would_verify_with(
    monkeypatch, tmp_path, variables
):
    """REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else the configured file: requests' own order
    (the environment overrides the exporter's certificate file), read from requests itself."""
    for name, file in variables.items():
        path = tmp_path / file if file else ""
        if path:
            path.write_text("not a real bundle: never loaded, these exporters only get built")
        monkeypatch.setenv(name, str(path))
    with_requests = otlp.exporter_class()(endpoint=ENDPOINT.replace("http:", "https:"))
    session = with_requests._client._transport._session
    expected = session.merge_environment_settings(with_requests._endpoint, {}, None, None, None)
    assert isinstance(expected["verify"], str)
    lighter = _built(ENDPOINT.replace("http:", "https:"))
    assert type(lighter._client._transport) is Urllib3HTTPTransport
    assert _pool_settings(lighter)["ca_certs"] == expected["verify"]
    assert _pool_settings(lighter)["cert_reqs"] == "CERT_REQUIRED"


def test_a_proxy_the_endpoint_bypasses_does_not_keep_requests(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert type(_built()._client._transport) is Urllib3HTTPTransport


def test_a_netrc_login_for_the_collector_keeps_requests(monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login castiel password not-a-real-one\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert type(_built()._client._transport) is RequestsHTTPTransport


@pytest.mark.parametrize(
    "change",
    [
        lambda s: setattr(s, "auth", ("user", "pass")),
        lambda s: s.headers.update({"Authorization": "Bearer t"}),
        lambda s: s.hooks["response"].append(lambda r, **kw: r),
        lambda s: s.proxies.update({"http": "http://127.0.0.1:3128"}),
        lambda s: s.mount("http://127.0.0.1", requests.adapters.HTTPAdapter()),
        lambda s: setattr(s, "trust_env", False),
    ],
    ids=["auth", "header", "hook", "proxies", "adapter", "trust_env"],
)
def test_a_credential_providers_session_keeps_requests(change):
    session = requests.Session()
    change(session)
    exporter = otlp.exporter_class()(endpoint=ENDPOINT, session=session)
    assert lighter_transport(exporter) is None
    assert use_lighter_transport(exporter)._client._transport._session is session


def test_tracing_sends_with_urllib3_unless_the_librarys_exporter_is_asked_for(settings):
    assert type(tracing._otlp_exporter(settings)._client._transport) is Urllib3HTTPTransport
    settings.CASTIEL_OTLP_ENCODER = "library"
    assert type(tracing._otlp_exporter(settings)._client._transport) is RequestsHTTPTransport
