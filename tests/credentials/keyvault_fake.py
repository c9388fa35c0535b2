"""A local HTTPS fake of the Azure Key Vault secrets REST API, enough for ``SecretClient`` 4.12.

No Key Vault emulator exists. This implements what the SDK calls and what Castiel
relies on, with Key Vault's documented behaviour:

* HTTPS only, and the first unauthenticated request is answered 401 with the bearer
  challenge (the SDK sends that request without its body, then retries with a token);
* ``PUT /secrets/{name}`` creates a new version every time; ``GET /secrets/{name}/{version}``
  (empty version = current); ``GET /secrets/{name}/versions``; ``GET /secrets``;
* soft delete always on: ``DELETE /secrets/{name}`` moves the secret to the deleted
  collection (``recoveryId`` set), ``GET``/``DELETE /deletedsecrets/{name}`` read and purge it,
  ``POST /deletedsecrets/{name}/recover`` restores it; writing a deleted, unpurged name is 409;
* ``exp``/``nbf`` are stored and returned but, like Key Vault, not enforced on reads;
* names must match ``^[0-9a-zA-Z-]+$``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.support.https import serving_https

NAME = r"(?P<name>[0-9a-zA-Z-]+)"
TENANT = "00000000-0000-0000-0000-000000000000"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
    'resource="https://vault.azure.net"'
)


class FakeVault:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets: dict[str, list[dict]] = {}
        self.deleted: dict[str, dict] = {}
        self.requests: list[tuple[str, str, bool]] = []  # method, path, had a token
        self.tokens: list[str] = []  # the bearer tokens presented, in order
        self.url = ""

    # -- helpers ---------------------------------------------------------------------------

    def _bundle(self, name: str, version: dict, *, with_value: bool = True) -> dict:
        body = {
            "id": f"{self.url}/secrets/{name}/{version['version']}",
            "attributes": dict(version["attributes"]),
            "tags": dict(version["tags"]),
        }
        if version.get("contentType"):
            body["contentType"] = version["contentType"]
        if with_value:
            body["value"] = version["value"]
        return body

    def _deleted_bundle(self, name: str) -> dict:
        entry = self.deleted[name]
        return {
            **self._bundle(name, entry["versions"][-1]),
            "recoveryId": f"{self.url}/deletedsecrets/{name}",
            "deletedDate": entry["deletedDate"],
            "scheduledPurgeDate": entry["deletedDate"] + 90 * 86400,
        }

    # -- operations ------------------------------------------------------------------------

    def put(self, name: str, body: dict):
        if name in self.deleted:
            return 409, _error(
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
            )
        if "value" not in body:
            return 400, _error("BadParameter", "value is required")
        now = int(time.time())
        attributes = {
            "enabled": body.get("attributes", {}).get("enabled", True),
            "created": now,
            "updated": now,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }
        for key in ("exp", "nbf"):
            if body.get("attributes", {}).get(key) is not None:
                attributes[key] = body["attributes"][key]
        version = {
            "version": uuid.uuid4().hex,
            "value": body["value"],
            "tags": body.get("tags") or {},
            "contentType": body.get("contentType"),
            "attributes": attributes,
        }
        self.secrets.setdefault(name, []).append(version)
        return 200, self._bundle(name, version)

    def get(self, name: str, version: str):
        versions = self.secrets.get(name)
        if not versions:
            return 404, _error("SecretNotFound", f"A secret with (name/id) {name} was not found")
        if not version:
            return 200, self._bundle(name, versions[-1])
        for item in versions:
            if item["version"] == version:
                return 200, self._bundle(name, item)
        return 404, _error(
            "SecretNotFound", f"A secret with (name/id) {name}/{version} was not found"
        )

    def versions(self, name: str):
        versions = self.secrets.get(name)
        if not versions:
            return 404, _error("SecretNotFound", f"A secret with (name/id) {name} was not found")
        items = [self._bundle(name, v, with_value=False) for v in versions]
        return 200, {"value": items, "nextLink": None}

    def list(self):
        items = []
        for name, versions in self.secrets.items():
            item = self._bundle(name, versions[-1], with_value=False)
            item["id"] = f"{self.url}/secrets/{name}"
            items.append(item)
        return 200, {"value": items, "nextLink": None}

    def delete(self, name: str):
        if name not in self.secrets:
            return 404, _error("SecretNotFound", f"A secret with (name/id) {name} was not found")
        self.deleted[name] = {"versions": self.secrets.pop(name), "deletedDate": int(time.time())}
        return 200, self._deleted_bundle(name)

    def get_deleted(self, name: str):
        if name not in self.deleted:
            return 404, _error("SecretNotFound", f"Deleted Secret not found: {name}")
        return 200, self._deleted_bundle(name)

    def purge(self, name: str):
        if name not in self.deleted:
            return 404, _error("SecretNotFound", f"Deleted Secret not found: {name}")
        del self.deleted[name]
        return 204, None

    def recover(self, name: str):
        if name not in self.deleted:
            return 404, _error("SecretNotFound", f"Deleted Secret not found: {name}")
        self.secrets[name] = self.deleted.pop(name)["versions"]
        return 200, self._bundle(name, self.secrets[name][-1])

    def route(self, method: str, path: str, body: dict):
        routes = [
            ("PUT", rf"/secrets/{NAME}/?", lambda m: self.put(m["name"], body)),
            ("GET", rf"/secrets/{NAME}/versions/?", lambda m: self.versions(m["name"])),
            ("GET", r"/secrets/?", lambda m: self.list()),
            (
                "GET",
                rf"/secrets/{NAME}(/(?P<version>[0-9a-zA-Z]*))?/?",
                lambda m: self.get(m["name"], m["version"] or ""),
            ),
            ("DELETE", rf"/secrets/{NAME}/?", lambda m: self.delete(m["name"])),
            ("GET", rf"/deletedsecrets/{NAME}/?", lambda m: self.get_deleted(m["name"])),
            ("DELETE", rf"/deletedsecrets/{NAME}/?", lambda m: self.purge(m["name"])),
            ("POST", rf"/deletedsecrets/{NAME}/recover/?", lambda m: self.recover(m["name"])),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                with self.lock:
                    return handler(match)
        return 404, _error("NotFound", f"no route for {method} {path}")


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _handler(vault: FakeVault):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            authorization = self.headers.get("Authorization") or ""
            authorized = authorization.startswith("Bearer ")
            vault.requests.append((self.command, path, authorized))
            if authorized:
                vault.tokens.append(authorization.removeprefix("Bearer "))
            if not authorized:
                status, body, headers = 401, None, {"WWW-Authenticate": CHALLENGE}
            else:
                try:
                    payload = json.loads(raw) if raw else {}
                except ValueError:
                    payload = {}
                status, body = vault.route(self.command, path, payload)
                headers = {}
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    return Handler


@contextmanager
def running_vault(ssl_context) -> Iterator[FakeVault]:
    """``with running_vault(ssl_context) as vault: vault.url …`` (HTTPS on 127.0.0.1)."""
    vault = FakeVault()
    with serving_https(_handler(vault), ssl_context) as url:
        vault.url = url
        yield vault
