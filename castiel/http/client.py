"""``OutboundClient``: the single place outbound requests are made.

Adapters never call ``requests`` directly (STYLE.md rule 5). The client:

* applies the credential (a ``requests.auth.AuthBase``; if it also has
  ``on_unauthorized(response) -> bool`` a 401 triggers one refresh and one retry, and its
  ``send_kwargs`` such as a client certificate are passed to the transport);
* asks the rate-limit gate before each request and feeds the response back after it;
* always uses timeouts; checks every URL and redirect hop against the SSRF guard and connects
  only to addresses the guard checked (:mod:`castiel.http.transport`);
* follows redirects itself: credentials (whatever the credential sets: headers, query
  parameters, a client certificate) go only to the origin — scheme, host and port — the
  request was made to, and an authenticated request is never redirected from https to http;
* turns failures into typed, classified errors (:mod:`castiel.http.errors`);
* logs one structured line per request (method, host, path — never the query string, headers
  or body, which can carry credentials) and counts/times it per provider;
* sends the current correlation id as ``X-Correlation-ID``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from castiel.http import ssrf, transport
from castiel.http.errors import RedirectRefusedError, classify, classify_exception
from castiel.observability import metrics
from castiel.observability.context import get_correlation_id
from castiel.observability.logging import get_logger

log = get_logger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Headers that carry credentials whoever set them (the caller, the session's cookie jar).
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RateLimitGate(Protocol):
    def acquire(self, operation: str, cost: int = 1) -> None:
        """Return when the request may go, or raise (refused / deferred)."""

    def feedback(self, response: requests.Response) -> None:
        """Adjust limits from the provider's rate-limit headers."""


class NullGate:
    def acquire(self, operation: str, cost: int = 1) -> None:
        return None

    def feedback(self, response: requests.Response) -> None:
        return None


class OutboundClient:
    def __init__(
        self,
        *,
        provider: str = "generic",
        base_url: str = "",
        auth: requests.auth.AuthBase | None = None,
        gate: RateLimitGate | None = None,
        headers: dict[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        session: requests.Session | None = None,
        check_ssrf: bool = True,
    ):
        self.provider = provider
        self.base_url = base_url
        self.auth = auth
        self.gate = gate or NullGate()
        self.timeout = timeout or (
            settings.CASTIEL_OUTBOUND_CONNECT_TIMEOUT,
            settings.CASTIEL_OUTBOUND_TIMEOUT,
        )
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": "Castiel/1.0", **(headers or {})})
        self.check_ssrf = check_ssrf
        if check_ssrf:
            transport.guard(self.session)
        self._proxies: dict[str, dict] = {}

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")) or not self.base_url:
            return path_or_url
        return urljoin(self.base_url.rstrip("/") + "/", path_or_url.lstrip("/"))

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        operation: str = "fetch",
        cost: int = 1,
        raise_for_status: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; retry once after a credential refresh on 401."""
        url = self.url(path_or_url)
        response = self._send(method, url, operation=operation, cost=cost, **kwargs)
        if response.status_code == 401 and self._refresh_after(response):
            response = self._send(method, url, operation=operation, cost=cost, **kwargs)
        if raise_for_status:
            error = classify(response, what=f"{method} {_describe(url)}")
            if error is not None:
                raise error
        return response

    def get(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path_or_url, **kwargs)

    def post(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request(
            "POST", path_or_url, operation=kwargs.pop("operation", "create"), **kwargs
        )

    def patch(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request(
            "PATCH", path_or_url, operation=kwargs.pop("operation", "update"), **kwargs
        )

    def put(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request(
            "PUT", path_or_url, operation=kwargs.pop("operation", "update"), **kwargs
        )

    def delete(self, path_or_url: str, **kwargs: Any) -> requests.Response:
        return self.request(
            "DELETE", path_or_url, operation=kwargs.pop("operation", "delete"), **kwargs
        )

    # -- internals ---------------------------------------------------------------------------

    def _refresh_after(self, response: requests.Response) -> bool:
        hook = getattr(self.auth, "on_unauthorized", None)
        if hook is None:
            return False
        return bool(hook(response))

    def _send(self, method: str, url: str, *, operation: str, cost: int, **kwargs: Any):
        self.gate.acquire(operation, cost)
        headers = dict(kwargs.pop("headers", None) or {})
        correlation_id = get_correlation_id()
        if correlation_id:
            headers.setdefault("X-Correlation-ID", correlation_id)
        send_kwargs = dict(getattr(self.auth, "send_kwargs", None) or {})
        send_kwargs.setdefault("timeout", kwargs.pop("timeout", self.timeout))
        # Prepared without the credential: each hop applies it (or not) to its own URL.
        request = requests.Request(method, url, headers=headers, auth=self._later(), **kwargs)
        started = time.perf_counter()
        outcome = "error"
        try:
            response = self._send_following_redirects(request, send_kwargs)
            outcome = f"{response.status_code // 100}xx"
        except Exception as exc:
            raise classify_exception(exc) from exc
        finally:
            duration = time.perf_counter() - started
            metrics.OUTBOUND_REQUESTS.labels(self.provider, outcome).inc()
            metrics.OUTBOUND_DURATION.labels(self.provider).observe(duration)
            log.info(
                "outbound.request",
                provider=self.provider,
                method=method,
                target=_describe(url),
                outcome=outcome,
                duration_ms=round(duration * 1000, 1),
            )
        self.gate.feedback(response)
        return response

    def _send_following_redirects(self, request: requests.Request, send_kwargs: dict):
        """Send, following up to ``MAX_REDIRECTS`` redirects by hand.

        ``plain`` is each hop's request as it was *before* the credential was applied. While
        the hops stay on the first request's origin (scheme, host and port) the credential is
        applied to each one afresh (so a signature or a query-parameter key matches the new
        URL); from the first hop to another origin on, requests are rebuilt from ``plain``
        without credential headers, and without the credential's transport arguments (a
        client certificate), even if a later hop comes back.
        """
        plain = self.session.prepare_request(request)
        origin = _origin(plain.url)
        authenticated = self.auth is not None or any(
            k.lower() in _CREDENTIAL_HEADERS for k in plain.headers
        )
        on_origin = True
        bare_kwargs = {"timeout": send_kwargs["timeout"]}
        for _hop in range(MAX_REDIRECTS + 1):
            prepared = plain
            if on_origin and self.auth is not None:
                prepared = plain.copy()
                prepared.prepare_auth(self.auth, prepared.url)
            proxies = self._proxies_for(prepared)
            if self.check_ssrf:
                proxied = requests.utils.select_proxy(prepared.url, proxies) is not None
                ssrf.check_url(prepared.url, proxied=proxied)
            response = self.session.send(
                prepared,
                allow_redirects=False,
                proxies=proxies,
                **(send_kwargs if on_origin else bare_kwargs),
            )
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or not location:
                return response
            next_url = urljoin(plain.url, location)
            if authenticated and _scheme(plain.url) == "https" and _scheme(next_url) != "https":
                response.close()
                raise RedirectRefusedError(
                    f"{_describe(plain.url)} redirected an authenticated request to "
                    f"{_describe(next_url)}, which is not https"
                )
            method = plain.method
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method = "GET"
            keep_body = method == plain.method
            on_origin = on_origin and _origin(next_url) == origin
            headers = {
                k: v
                for k, v in plain.headers.items()
                if (on_origin or k.lower() not in _CREDENTIAL_HEADERS)
                and (keep_body or k.lower() not in _BODY_HEADERS)
            }
            plain = self.session.prepare_request(
                requests.Request(
                    method,
                    next_url,
                    headers=headers,
                    data=plain.body if keep_body else None,
                    auth=self._later() if on_origin else None,
                )
            )
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _later(self):
        """Stands for the credential while a hop is prepared: it is applied separately, and
        ``requests`` must not look up ``.netrc`` credentials in its place."""
        return _NO_AUTH if self.auth is not None else None

    def _proxies_for(self, prepared) -> dict:
        """The proxies for this origin, resolved once per client as requests would.

        Left to itself, ``Session.send`` re-reads the whole process environment for proxy
        settings on every request (a third of a millisecond, more than a loopback round
        trip); the answer only depends on the scheme and host, and a client lives for one
        job, so environment changes still apply to the next one.
        """
        parts = urlsplit(prepared.url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._proxies:
            self._proxies[key] = requests.utils.resolve_proxies(
                prepared, self.session.proxies, self.session.trust_env
            )
        return self._proxies[key]


class _NoAuth(requests.auth.AuthBase):
    def __call__(self, request):
        return request


_NO_AUTH = _NoAuth()


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _describe(url: str) -> str:
    """host + path, without the query string (which may carry an API key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
