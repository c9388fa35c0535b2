"""Request-signing credentials: OAuth 1.0a (HMAC-SHA1) and a generic HMAC signing secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import requests
from authlib.integrations.requests_client import OAuth1Auth
from authlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_TYPE_HEADER,
    SIGNATURE_TYPE_QUERY,
)

from credentials.types.base import CredentialKind, Field, header_name


class OAuth1(CredentialKind):
    """OAuth 1.0a with HMAC-SHA1 (RFC 5849), signed by authlib — never by hand."""

    slug = "oauth1"
    label = "OAuth 1.0a (HMAC-SHA1)"
    secret_fields = (
        Field("consumer_key"),
        Field("consumer_secret"),
        Field("token", required=False, help="Access token (resource owner key)."),
        Field("token_secret", required=False),
    )
    settings_fields = (
        Field(
            "signature_type",
            required=False,
            choices=(SIGNATURE_TYPE_HEADER, SIGNATURE_TYPE_QUERY),
            default=SIGNATURE_TYPE_HEADER,
        ),
        Field("realm", required=False),
    )

    def clean_together(self, cleaned, errors):
        secret = cleaned.secret
        if bool(secret.get("token")) != bool(secret.get("token_secret")):
            errors["secret.token_secret"] = "token and token_secret go together"  # noqa: S105

    def applier(self, secret, settings):
        return OAuth1Auth(
            client_id=secret["consumer_key"],
            client_secret=secret["consumer_secret"],
            token=secret.get("token"),
            token_secret=secret.get("token_secret"),
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=settings.get("signature_type", SIGNATURE_TYPE_HEADER),
            realm=settings.get("realm"),
            # Form bodies are part of the OAuth1 signature base string (RFC 5849 §3.4.1.3).
            force_include_body=True,
        )


ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "sha512": hashlib.sha512}


class HmacSigningSecret(CredentialKind):
    """Signs each request body with a shared secret (the scheme most webhook APIs use).

    The signed message is the raw body, or ``"{timestamp}.{body}"`` when
    ``timestamp_header`` is set (the timestamp, in Unix seconds, is sent in that header).
    The signature goes to ``header`` as ``prefix + hex/base64(HMAC(secret, message))``.
    Written with the standard library on purpose: there is no common scheme a library
    could implement, only this configurable shape.
    """

    slug = "hmac_signing_secret"
    label = "HMAC signing secret"
    secret_fields = (Field("secret"),)
    settings_fields = (
        Field("header", required=False, default="X-Signature", check=header_name),
        Field("algorithm", required=False, choices=tuple(ALGORITHMS), default="sha256"),
        Field("encoding", required=False, choices=("hex", "base64"), default="hex"),
        Field("prefix", required=False, help='e.g. "sha256="'),
        Field("timestamp_header", required=False, check=header_name),
    )

    def applier(self, secret, settings):
        return HmacAuth(secret=secret["secret"].encode(), **settings)


class HmacAuth(requests.auth.AuthBase):
    def __init__(
        self,
        *,
        secret: bytes,
        header: str = "X-Signature",
        algorithm: str = "sha256",
        encoding: str = "hex",
        prefix: str = "",
        timestamp_header: str | None = None,
    ):
        self._secret = secret
        self.header = header
        self.digest = ALGORITHMS[algorithm]
        self.encoding = encoding
        self.prefix = prefix
        self.timestamp_header = timestamp_header

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        message = body
        if self.timestamp_header:
            timestamp = str(int(time.time()))
            request.headers[self.timestamp_header] = timestamp
            message = timestamp.encode() + b"." + body
        mac = hmac.new(self._secret, message, self.digest).digest()
        encoded = mac.hex() if self.encoding == "hex" else base64.b64encode(mac).decode()
        request.headers[self.header] = self.prefix + encoded
        return request

    def __repr__(self) -> str:
        return f"HmacAuth(header={self.header!r})"
