"""SSRF guard: tenant-configured URLs may not reach internal networks.

The policy: an address may be connected to only if it is globally routable — and so is the
IPv4 address it wraps, if any (IPv4-mapped, IPv4-compatible, 6to4 2002::/16, NAT64
64:ff9b::/96, Teredo) — or it lies inside a network listed in
``CASTIEL_OUTBOUND_ALLOWED_NETWORKS``. Private, loopback, link-local, carrier-grade NAT
(100.64.0.0/10, which holds a cloud metadata address), site-local, multicast, reserved and
documentation ranges are all refused.

Where it is enforced: :mod:`castiel.http.transport` resolves a host name **once** per new
connection (:func:`resolve`), checks every answer, and connects to the checked address, so a
DNS answer that changes between a check and the connection (rebinding) cannot reach another
address, and a name that does not resolve is never connected to. :func:`check_url` runs
before every request and redirect hop and costs no DNS lookup: it refuses other schemes and
internal address literals at once. Requests sent through an HTTP proxy are resolved by the
proxy; :func:`check_url` then also resolves the name itself (``proxied=True``), and the proxy
must enforce the same rule (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

from castiel.http.errors import SsrfBlockedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use translation
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291 §2.5.5.1)


@lru_cache(maxsize=8)
def _allowed(networks: tuple[str, ...]):
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _wrapped(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (and is routed to), if any."""
    if ip.version == 4:
        return ()
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def _routable(ip: IPAddress) -> bool:
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return False
    if ip.version == 6 and (ip.is_site_local or ip in _NAT64_LOCAL):
        return False
    return True


@lru_cache(maxsize=4096)
def _refusal(address: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``address`` may not be connected to, or None. Cached: a pure function."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    networks = _allowed(allowed)
    wrapped = _wrapped(ip)
    candidates = (ip, *wrapped)
    if any(c in net for c in candidates for net in networks if c.version == net.version):
        return None
    if not _routable(ip):
        return f"{ip}, an internal address"
    for inner in wrapped:
        if not _routable(inner):
            return f"{ip} (which carries {inner}), an internal address"
    return None


def check_address(host: str, address: str) -> None:
    """Raise :class:`SsrfBlockedError` unless ``address`` (what ``host`` resolved to) may be
    reached."""
    reason = _refusal(address, tuple(settings.CASTIEL_OUTBOUND_ALLOWED_NETWORKS))
    if reason is not None:
        if _literal(host) is not None:
            raise SsrfBlockedError(f"the URL points at {reason} outbound calls may not reach")
        raise SsrfBlockedError(f"{host} resolves to {reason} outbound calls may not reach")


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple]:
    """``getaddrinfo`` answers for ``host`` — only if every answer may be reached.

    Raises ``socket.gaierror`` when the name does not resolve and :class:`SsrfBlockedError`
    when any answer is internal (one internal answer is enough: a resolver that mixes them
    is not to be trusted with the choice).
    """
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    for info in infos:
        check_address(host, info[4][0])
    return infos


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def check_url(url: str, *, proxied: bool = False) -> None:
    """Before a request or redirect hop: the scheme, the host, and an address literal.

    Without a proxy the connection itself resolves and checks the name
    (:mod:`castiel.http.transport`), so no lookup is done here. Through a proxy the proxy
    resolves the name; it is resolved here as well, and a name that does not resolve locally
    is left to the proxy (which must enforce the same rule).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SsrfBlockedError(f"URL scheme {parts.scheme!r} is not allowed")
    host = parts.hostname
    if not host:
        raise SsrfBlockedError("URL has no host")
    literal = _literal(host)
    if literal is not None:
        check_address(host, literal)
        return
    if proxied:
        try:
            resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
        except socket.gaierror:
            return
