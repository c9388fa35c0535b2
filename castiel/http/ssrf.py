"""SSRF guard: tenant-configured URLs may not reach internal networks.

Every address the host name resolves to must be public, or inside a network listed in
``CASTIEL_OUTBOUND_ALLOWED_NETWORKS``. The check runs before every request and every
redirect hop. It resolves the name itself, so a DNS answer that changes between the check and
the connection (rebinding) is a residual risk; production deployments should also egress
through a proxy or firewall that enforces the same rule.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

from castiel.http.errors import SsrfBlockedError


@lru_cache(maxsize=8)
def _allowed(networks: tuple[str, ...]):
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _is_internal(ip: ipaddress._BaseAddress) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SsrfBlockedError(f"URL scheme {parts.scheme!r} is not allowed")
    host = parts.hostname
    if not host:
        raise SsrfBlockedError("URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return  # unresolvable: the request itself fails with a TransportError
    allowed = _allowed(tuple(settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS))
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if _is_internal(ip) and not any(ip in net for net in allowed):
            raise SsrfBlockedError(
                f"{host} resolves to {ip}, an internal address outbound calls may not reach"
            )
