"""The OTLP exporter's HTTP client: the library's urllib3 transport where it is equivalent.

``OTLPSpanExporter`` posts each batch through ``requests`` (its default transport). At the
webhook receiver's full rate a web process exports a batch every half second or so, and
``requests`` spent about 0.8 ms of CPU per POST on top of urllib3 — more than encoding the
batch's ninety spans (docs/benchmarks.md, session 14). The same library ships a urllib3
transport (``opentelemetry-exporter-http-transport``, registered under the name
``urllib3``) that sends the same request for about a third of that. The exporter does not
yet choose it from the environment, so :func:`lighter_transport` does, and only where the
requests ``Session`` would add nothing of its own: no credential-provider session (a plain
``requests.Session`` without auth, proxies, hooks, cookies or extra adapters), no proxy and
no ``.netrc`` entry for the endpoint, and no CA directory. It then verifies TLS with the
very CA bundle ``requests`` would use, found by ``requests`` itself
(``Session.merge_environment_settings``): ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when
set (they override the configured certificate file, as in ``requests``), else the
configured certificate file, else certifi's. In every other case the exporter keeps
``requests``. Retries, timeouts, compression and results stay the library's
(``_OTLPHTTPClient``), whichever transport sends. tests/observability/test_otlp_transport.py
holds both halves.
"""

from __future__ import annotations

import os
from typing import Any


def _plain_session(session) -> bool:
    import requests
    from requests.utils import default_headers

    return (
        type(session) is requests.Session
        and session.auth is None
        and not session.proxies
        and not any(session.hooks.values())
        and not session.cookies
        and not session.params
        and session.trust_env
        and session.max_redirects == requests.models.DEFAULT_REDIRECT_LIMIT
        and session.headers == default_headers()
        and sorted(session.adapters) == ["http://", "https://"]
        and all(type(each) is requests.adapters.HTTPAdapter for each in session.adapters.values())
    )


def lighter_transport(exporter) -> Any | None:
    """The library's urllib3 transport for ``exporter`` (an ``OTLPSpanExporter``) where it
    sends what the exporter's requests session would, else None (keep requests)."""
    from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
    from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
    from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_netrc_auth

    transport = exporter._client._transport
    if type(transport) is not RequestsHTTPTransport:
        return None
    session = transport._session
    endpoint = exporter._endpoint
    if not _plain_session(session):
        return None
    # What requests itself merges into each of this session's requests (the transport passes
    # no proxies or verify of its own): the environment's proxies for the endpoint, and
    # REQUESTS_CA_BUNDLE or else CURL_CA_BUNDLE in place of the session's verify.
    merged = session.merge_environment_settings(endpoint, {}, None, None, None)
    if merged["proxies"] or get_netrc_auth(endpoint):
        return None
    verify = merged["verify"]
    if verify is True:
        verify = DEFAULT_CA_BUNDLE_PATH  # what requests' HTTPAdapter.cert_verify uses
    elif isinstance(verify, str) and os.path.isdir(verify):
        return None  # requests passes a directory as ca_cert_dir; this transport cannot
    return Urllib3HTTPTransport(verify=verify, cert=merged["cert"])


def use_lighter_transport(exporter):
    """``exporter`` sending through :func:`lighter_transport` where it applies."""
    lighter = lighter_transport(exporter)
    if lighter is not None:
        exporter._client._transport.close()
        exporter._client._transport = lighter
    return exporter
