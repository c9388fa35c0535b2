"""Certificates generated at test time with ``cryptography``: a CA, a server certificate for
127.0.0.1/localhost, and a client certificate (mTLS)."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _issue(subject_cn, key, issuer_cert, issuer_key, *, ca=False, server=False, days=30, names=()):
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    *(x509.DNSName(name) for name in names),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


@dataclass
class TlsMaterial:
    folder: Path
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str
    client_cn: str

    @property
    def ca_path(self) -> str:
        return str(self.folder / "ca.pem")

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.folder / "server.pem", self.folder / "server.key")
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_path)
        return context


def make_tls_material(
    folder: Path, *, client_cn: str = "castiel-client", server_names: tuple[str, ...] = ()
) -> TlsMaterial:
    """``server_names``: more DNS names the server certificate is valid for."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _issue("Castiel Test CA", ca_key, None, None, ca=True)
    server_key = _key()
    server = _issue("127.0.0.1", server_key, ca, ca_key, server=True, names=server_names)
    client_key = _key()
    client = _issue(client_cn, client_key, ca, ca_key)
    material = TlsMaterial(
        folder=folder,
        ca_pem=_pem_cert(ca),
        server_cert_pem=_pem_cert(server),
        server_key_pem=_pem_key(server_key),
        client_cert_pem=_pem_cert(client),
        client_key_pem=_pem_key(client_key),
        client_cn=client_cn,
    )
    (folder / "ca.pem").write_text(material.ca_pem)
    (folder / "server.pem").write_text(material.server_cert_pem)
    (folder / "server.key").write_text(material.server_key_pem)
    (folder / "server.key").chmod(0o600)
    return material
