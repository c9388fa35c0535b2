"""A local fake of the two Microsoft identity endpoints Castiel's Key Vault credentials use.

No Entra ID emulator exists; the real azure-identity (and MSAL) credentials talk to this:

* Entra ID, for a service principal (``EnvironmentCredential`` → ``ClientSecretCredential``):
  the tenant's OpenID configuration at ``/{tenant}/v2.0/.well-known/openid-configuration``
  and the v2 token endpoint ``POST /{tenant}/oauth2/v2.0/token`` (client-credentials grant,
  client id + secret in the form body), answering like
  https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow;
* the App Service managed identity endpoint (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``):
  ``GET /msi/token?api-version=2019-08-01&resource=…`` with the ``X-IDENTITY-HEADER``
  header, answering like
  https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
  (``expires_on`` in epoch seconds, as a string).

Every token it issues is recorded in ``issued``; anything else is answered 400/401 with an
OAuth-style error and recorded in ``refused``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.support.https import serving_https


class FakeIdentity:
    def __init__(self, *, tenant: str, client_id: str, client_secret: str, identity_header: str):
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.identity_header = identity_header
        self.issued: list[dict] = []  # {"kind", "token", "scope"}
        self.refused: list[str] = []
        self.url = ""

    def _issue(self, kind: str, scope: str) -> str:
        token = f"{kind}-{uuid.uuid4().hex}"
        self.issued.append({"kind": kind, "token": token, "scope": scope})
        return token

    def route(self, method: str, path: str, query: dict, form: dict, headers) -> tuple[int, dict]:
        if method == "GET" and path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            base = f"{self.url}/{self.tenant}"
            return 200, {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "tenant_region_scope": None,
            }
        if method == "POST" and path == f"/{self.tenant}/oauth2/v2.0/token":
            if form.get("grant_type") != "client_credentials":
                return self._refuse(400, "unsupported_grant_type", form.get("grant_type", ""))
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return self._refuse(401, "invalid_client", "wrong client id or secret")
            scope = form.get("scope", "")
            return 200, {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": self._issue("entra", scope),
            }
        if method == "GET" and path == "/msi/token":
            if headers.get("X-IDENTITY-HEADER") != self.identity_header:
                return self._refuse(401, "invalid_request", "missing or wrong X-IDENTITY-HEADER")
            if query.get("api-version") != "2019-08-01" or not query.get("resource"):
                return self._refuse(400, "invalid_request", "api-version and resource")
            resource = query["resource"]
            return 200, {
                "access_token": self._issue("msi", resource),
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": query.get("client_id", "system-assigned"),
            }
        return self._refuse(404, "not_found", f"{method} {path}")

    def _refuse(self, status: int, error: str, detail: str) -> tuple[int, dict]:
        self.refused.append(f"{error}: {detail}")
        return status, {"error": error, "error_description": detail}


def _handler(identity: FakeIdentity):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            status, body = identity.route(self.command, parts.path, query, form, self.headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

    return Handler


@contextmanager
def running_identity(ssl_context, **accounts) -> Iterator[FakeIdentity]:
    """``with running_identity(ssl_context, **accounts) as identity: identity.url …``."""
    identity = FakeIdentity(**accounts)
    with serving_https(_handler(identity), ssl_context) as url:
        identity.url = url
        yield identity
