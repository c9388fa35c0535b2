"""Serve a ``BaseHTTPRequestHandler`` over HTTPS on 127.0.0.1 for the fakes of services that
only speak HTTPS (Key Vault, Entra ID)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def serving_https(handler_class, ssl_context) -> Iterator[str]:
    """Yields the server's base URL (``https://127.0.0.1:<port>``); stops it afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    httpd.daemon_threads = True
    httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
