"""A loopback TCP proxy that can cut a real server off: outages without mocking any client.

``TcpProxy(target_port)`` listens on 127.0.0.1 and forwards every connection, byte for byte
(TLS passes through untouched), to 127.0.0.1:target_port. ``mode`` switches it:

* ``"pass"`` — forward (the default);
* ``"refuse"`` — stop listening: new connections are refused (ECONNREFUSED), open ones are cut;
* ``"blackhole"`` — accept connections but never answer (a client sees a read timeout); open
  ones are cut.

Switching back to ``"pass"`` listens on the same port again. Used to make the Cosmos DB
server (tests/syncing/fixtures.py) unreachable for a while.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.host = host
        self.target_port = target_port
        self.mode = "pass"
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closing = False
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._start_acceptor()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    # -- switching ---------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "refuse", "blackhole"), mode
        with self._lock:
            previous, self.mode = self.mode, mode
        if mode != "pass" or previous != "pass":
            self._cut_all()
        if mode == "refuse" and self._listener is not None:
            listener, self._listener = self._listener, None
            _close(listener)
        elif mode != "refuse" and self._listener is None:
            self._listener = self._listen(self.port)
            self._start_acceptor()

    @contextlib.contextmanager
    def down(self, mode: str = "refuse"):
        self.set_mode(mode)
        try:
            yield self
        finally:
            self.set_mode("pass")

    def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        self._cut_all()

    # -- plumbing ----------------------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(64)
        return sock

    def _start_acceptor(self) -> None:
        listener = self._listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closing:
            try:
                client, _addr = listener.accept()
            except OSError:
                return  # the listener was closed (refuse mode or close())
            self._track(client)
            if self.mode == "blackhole":
                continue  # held open, never answered, cut when the mode changes
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                self._untrack(client)
                continue
            self._track(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                if self.mode != "pass" or self._closing:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # cut by a mode switch (ValueError: a closed socket)
            return
        finally:
            self._untrack(a)
            self._untrack(b)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.discard(sock)
        _close(sock)

    def _cut_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for sock in conns:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
