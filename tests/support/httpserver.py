"""A real HTTP(S) server on 127.0.0.1 for tests, recording every request it receives.

Routes map ``(METHOD, path)`` to a handler ``fn(request) -> (status, headers, body)`` where
``body`` is bytes, str or a JSON-serialisable object. Unknown routes answer 404.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_cert: dict | None = None

    def json(self):
        return json.loads(self.body or b"null")


Handler = Callable[[Recorded], tuple[int, dict[str, str], object]]


@dataclass
class LocalServer:
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def route(self, method: str, path: str):
        def decorator(fn: Handler) -> Handler:
            self.routes[(method.upper(), path)] = fn
            return fn

        return decorator


def _make_handler(server_state: LocalServer):
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            return

        def _handle(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            cert = None
            if isinstance(self.connection, ssl.SSLSocket):
                cert = self.connection.getpeercert() or None
            recorded = Recorded(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_cert=cert,
            )
            server_state.requests.append(recorded)
            handler = server_state.routes.get((self.command, parts.path))
            if handler is None:
                status, headers, payload = 404, {}, {"error": "not found"}
            else:
                status, headers, payload = handler(recorded)
            if isinstance(payload, bytes):
                data = payload
            elif isinstance(payload, str):
                data = payload.encode()
            else:
                data = json.dumps(payload).encode()
                headers = {"Content-Type": "application/json", **headers}
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return RequestHandler


class running_server:
    """Context manager: ``with running_server() as srv: srv.url …``.

    ``ssl_context`` makes it HTTPS (e.g. to require client certificates).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.state = LocalServer()
        self.ssl_context = ssl_context

    def __enter__(self) -> LocalServer:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self.state))
        self.httpd.daemon_threads = True
        scheme = "http"
        if self.ssl_context is not None:
            self.httpd.socket = self.ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.state.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self.state

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
