"""No packet leaves this machine: a fake resolver and a socket ``connect`` that records targets.

SSRF tests need host names that resolve to internal, public or changing addresses. Real DNS
would send queries out (and cannot be made to answer 100.100.100.200), and a connection to a
"public" address must never really be attempted. ``Egress`` replaces ``socket.getaddrinfo``
(names the test did not declare fail as unknown; IP literals are answered locally) and
``socket.socket.connect``/``connect_ex`` (every target is recorded; only the loopback
``(host, port)`` pairs the test allowed are really connected, anything else is refused
before a packet is sent).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable


class Egress:
    def __init__(self):
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self._answers: dict[str, list[list[str] | None]] = {}
        self._reachable: set[tuple[str, int]] = set()

    # -- what the test declares ----------------------------------------------------------------

    def answer(self, name: str, *answers: Iterable[str] | None) -> None:
        """``name`` resolves to each answer in turn (the last one repeats); None = NXDOMAIN."""
        self._answers[name.lower()] = [None if a is None else list(a) for a in answers]

    def allow(self, url_or_port) -> None:
        """Let connections to this loopback server through (its base URL, or a port)."""
        port = url_or_port if isinstance(url_or_port, int) else int(url_or_port.rsplit(":", 1)[1])
        self._reachable.add(("127.0.0.1", port))

    # -- what replaces the socket module's functions -------------------------------------------

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(host)
        try:
            ips = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
        except ValueError:
            queue = self._answers.get(host.lower().rstrip("."))
            if not queue:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
            if ips is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        port = int(port or 0)
        infos = []
        for ip in ips:
            if ":" in ip:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return infos

    def install(self, monkeypatch) -> Egress:
        real_connect = socket.socket.connect
        egress = self

        def connect(sock, address):
            target = (str(address[0]), int(address[1]))
            egress.connects.append(target)
            if target not in egress._reachable:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "refused by the test (egress)")
            return real_connect(sock, address)

        def connect_ex(sock, address):
            try:
                connect(sock, address)
            except OSError as exc:
                return exc.errno or errno.ECONNREFUSED
            return 0

        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        return self
