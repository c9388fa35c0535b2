"""The guarded transport: connections go to the address the SSRF guard checked.

``requests`` normally hands a host name to urllib3, which resolves it again when it opens a
connection — so a check made beforehand can be answered with one address and the connection
with another (DNS rebinding). Here the connection classes resolve the name once, check every
answer (:func:`castiel.http.ssrf.resolve`) and connect to those very addresses. ``host``
stays the name, so the ``Host`` header, TLS SNI and the certificate check are all about the
name, not the address.

:class:`GuardedAdapter` mounts them on a ``requests`` session. Pooling is unchanged: a
kept-alive connection was checked when it was opened, and each new connection resolves again.
Requests sent through a proxy go over urllib3's own proxy pools (the proxy resolves the
target; :func:`castiel.http.ssrf.check_url` with ``proxied=True`` covers them).
"""

from __future__ import annotations

import socket
import sys

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import _DEFAULT_TIMEOUT, _set_socket_options, allowed_gai_family

from castiel.http import ssrf


class _GuardedConnectionMixin:
    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            infos = ssrf.resolve(host, self.port, allowed_gai_family())
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except UnicodeError:
            raise LocationParseError(f"'{host}', label empty or too long") from None
        error: OSError = OSError("getaddrinfo returned no address")
        for family, socktype, proto, _canonname, address in infos:
            sock = None
            try:
                sock = socket.socket(family, socktype, proto)
                _set_socket_options(sock, self.socket_options)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(address)
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
            except OSError as exc:
                error = exc
                if sock is not None:
                    sock.close()
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose direct connections go through the SSRF guard."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }


def guard(session: requests.Session, adapter: GuardedAdapter | None = None) -> requests.Session:
    """Mount the guarded adapter (a new one unless given) for http and https on ``session``."""
    adapter = adapter or GuardedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
