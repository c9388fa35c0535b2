"""mTLS: a client certificate and its private key, presented on every TLS handshake.

``requests`` only takes certificates as file paths (``ssl.SSLContext.load_cert_chain`` reads
files). We never put key material in a regular file: on Linux it goes into an anonymous
memory file (``memfd_create``) that is reachable only through ``/proc/self/fd/N`` of this
process, has no name on any filesystem, and disappears when it is closed or the process
dies (even on SIGKILL). Elsewhere it falls back to a 0600 file in a 0700 temporary folder,
removed when the applier is garbage-collected or the process exits. The files live as long
as the applier because urllib3 re-reads the paths whenever it opens a new connection.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from credentials.types.base import CredentialKind, Field


def load_certificate(value: str) -> x509.Certificate:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificate(value.encode())
    except ValueError:
        raise ValueError("is not a valid PEM certificate") from None


def load_private_key(value: str):
    if not isinstance(value, str) or "PRIVATE KEY-----" not in value:
        raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("is not a valid unencrypted PEM private key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError("must be an RSA, EC or Ed25519 private key")
    return key


def _check_certificate(value):
    load_certificate(value)
    return value


def _check_key(value):
    load_private_key(value)
    return value


def _check_ca(value):
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be one or more PEM certificates")
    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        raise ValueError("is not a valid PEM certificate bundle") from None
    return value


def _public_bytes(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class MtlsCertificate(CredentialKind):
    slug = "mtls_certificate"
    label = "mTLS client certificate"
    secret_fields = (
        Field("certificate", check=_check_certificate, help="PEM client certificate (chain)."),
        Field("private_key", check=_check_key, help="PEM private key, unencrypted."),
        Field(
            "ca_certificate",
            required=False,
            check=_check_ca,
            help="PEM CA bundle to verify the server with (private PKI).",
        ),
    )

    def clean_together(self, cleaned, errors):
        cert = load_certificate(cleaned.secret["certificate"])
        key = load_private_key(cleaned.secret["private_key"])
        if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
            errors["secret.private_key"] = "does not match the certificate's public key"
            return
        cleaned.expires_at = cert.not_valid_after_utc

    def applier(self, secret, settings):
        return MtlsAuth(secret)


class _PrivateFiles:
    """Key material as paths that never touch a disk (memfd) — or 0600 temp files."""

    def __init__(self):
        self._fds: list[int] = []
        self._dir: str | None = None

    def add(self, name: str, content: str) -> str:
        data = content.encode()
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create(f"castiel-{name}", os.MFD_CLOEXEC)
            os.write(fd, data)
            self._fds.append(fd)
            return f"/proc/self/fd/{fd}"
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="castiel-mtls-")  # mode 0700
        path = os.path.join(self._dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class MtlsAuth(requests.auth.AuthBase):
    def __init__(self, secret: dict):
        self._files = _PrivateFiles()
        cert = self._files.add("cert.pem", secret["certificate"])
        key = self._files.add("key.pem", secret["private_key"])
        self.send_kwargs: dict = {"cert": (cert, key)}
        if secret.get("ca_certificate"):
            self.send_kwargs["verify"] = self._files.add("ca.pem", secret["ca_certificate"])
        self._finalizer = weakref.finalize(self, self._files.close)

    def __call__(self, request):
        return request  # the certificate is presented by the TLS layer (send_kwargs)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return "MtlsAuth()"
