"""Fixtures for sync tests: real json-server (1.0 beta and 0.17), real cosmosdb-server over
HTTPS, the sandbox served by a live Castiel server, and helpers that drive sync runs.

Imported by the conftest of every test package that needs them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tests.support.services import require_executable, unavailable

NODE_MODULES = REPO / "tests" / "node" / "node_modules"
SERVERS = Path(__file__).resolve().parent / "servers"


def _require_node_package(name: str) -> None:
    require_executable("node")
    if not (NODE_MODULES / name).exists():
        unavailable(f"npm package {name} is missing: run `npm ci` in tests/node")


class NodeServer:
    """A Node test server started from tests/syncing/servers, which prints its port."""

    def __init__(self, script: str, *args: str, log_path: Path):
        self._log = open(log_path, "w+b")
        self.log_path = log_path
        self.proc = subprocess.Popen(
            ["node", str(SERVERS / script), *args],
            cwd=REPO,
            env={**os.environ, "CASTIEL_NODE_MODULES": str(NODE_MODULES)},
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.port = self._read_port()

    def _read_port(self, timeout: float = 30.0) -> int:
        found: list[int] = []

        def read():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith("LISTENING "):
                    found.append(int(line.split()[1]))
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise AssertionError(f"node server did not start: {self.log_path.read_text()[-2000:]}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        return found[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


@dataclass
class JsonServer:
    version: str
    url: str
    server: NodeServer


@pytest.fixture
def json_server(tmp_path):
    """Factory: ``json_server("1" | "017", {"contacts": [...]})`` → a running server."""
    _require_node_package("json-server")
    started: list[NodeServer] = []

    def start(version: str, data: dict) -> JsonServer:
        db = tmp_path / f"db-{version}-{len(started)}.json"
        db.write_text(json.dumps(data))
        server = NodeServer("json_server.mjs", version, str(db), log_path=db.with_suffix(".log"))
        started.append(server)
        return JsonServer(version=version, url=f"http://127.0.0.1:{server.port}", server=server)

    yield start
    for server in started:
        server.stop()


# -- Cosmos DB -----------------------------------------------------------------------------------


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A fresh certificate for 127.0.0.1/localhost (the package's own expired in 2021)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cosmos-cert.pem", directory / "cosmos-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# Any base64 string works as the emulator's key (it does not check auth).
COSMOS_TEST_KEY = "dGVzdC1rZXktZm9yLXRoZS1sb2NhbC1jb3Ntb3NkYi1zZXJ2ZXI="


@pytest.fixture(scope="session")
def cosmos_endpoint(tmp_path_factory):
    """A running cosmosdb-server (one per test session; tests use their own containers)."""
    _require_node_package("@vercel/cosmosdb-server")
    directory = tmp_path_factory.mktemp("cosmos")
    cert, key = self_signed_cert(directory)
    server = NodeServer("cosmos_server.mjs", str(cert), str(key), log_path=directory / "cosmos.log")
    yield f"https://127.0.0.1:{server.port}/"
    server.stop()


@pytest.fixture
def cosmos_store(cosmos_endpoint, request):
    """A Cosmos record store on a fresh container of the running emulator."""
    import uuid

    from syncing.records.stores.cosmos import CosmosRecordStore

    store = CosmosRecordStore(
        endpoint=cosmos_endpoint,
        key=COSMOS_TEST_KEY,
        database="castiel-tests",
        container=f"records-{uuid.uuid4().hex[:12]}",
    )
    yield store
    store.drop_container()


@pytest.fixture
def cosmos_proxy(cosmos_endpoint):
    """A loopback TCP proxy in front of the running cosmosdb-server: ``cosmos_proxy.down()``
    (or ``set_mode("refuse" | "blackhole" | "pass")``) makes the real server unreachable."""
    from urllib.parse import urlparse

    from tests.support.tcp_proxy import TcpProxy

    proxy = TcpProxy(urlparse(cosmos_endpoint).port)
    yield proxy
    proxy.close()


@pytest.fixture
def cosmos_outage_store(cosmos_proxy, monkeypatch):
    """A Cosmos record store on a fresh container, reached through ``cosmos_proxy`` (endpoint
    discovery off: the server advertises its own port), configured as the record store."""
    import uuid

    from syncing.records.stores.cosmos import CosmosRecordStore

    store = CosmosRecordStore(
        endpoint=cosmos_proxy.url,
        key=COSMOS_TEST_KEY,
        database="castiel-tests",
        container=f"records-{uuid.uuid4().hex[:12]}",
        timeout=1.0,
        endpoint_discovery=False,
    )
    monkeypatch.setattr("syncing.records.stores._configured", lambda kind: store)
    yield store
    cosmos_proxy.set_mode("pass")
    store.drop_container()


# -- sync drivers --------------------------------------------------------------------------------


@dataclass
class Enqueued:
    messages: list[tuple] = field(default_factory=list)

    def drain(self) -> list[tuple]:
        taken, self.messages[:] = list(self.messages), []
        return taken


@pytest.fixture
def enqueued(monkeypatch):
    """Capture the scheduler's queue messages instead of sending them to the broker."""
    captured = Enqueued()

    def fake_enqueue_many(func_path, arg_lists, *, kind):
        captured.messages.extend((func_path, tuple(args), kind) for args in arg_lists)

    monkeypatch.setattr("syncing.inbound.scheduler.enqueue_many", fake_enqueue_many)
    return captured


@pytest.fixture
def fast_retries(settings):
    settings.CASTIEL_SYNC_RETRY_BASE_SECONDS = 0.01
    settings.CASTIEL_SYNC_RETRY_CAP_SECONDS = 0.05
    settings.CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS = 60
    return settings


@pytest.fixture(params=["orm", "cosmos"])
def record_store(request, monkeypatch):
    """Each test using this runs once per record store; the worker and services use it."""
    if request.param == "orm":
        from syncing.records.stores.orm import OrmRecordStore

        store = OrmRecordStore()
    else:
        store = request.getfixturevalue("cosmos_store")
    monkeypatch.setattr("syncing.records.stores._configured", lambda kind: store)
    return store


@pytest.fixture
def stored_records(record_store, tenant, other_tenant):
    """Three contacts of ``tenant`` (one deleted) and one of ``other_tenant``, written to the
    record store under test; returns (tenant's integration, {external id: record})."""
    from django.utils import timezone

    from syncing.records.stores.base import Scope
    from tests.factories import IntegrationFactory
    from tests.syncing.records.test_stores import make

    integration = IntegrationFactory(tenant=tenant)
    scope = Scope(tenant.id, integration.id, "contacts")
    records = {
        "a": make(scope, "a", name="Ada"),
        "b": make(scope, "b", name="Bob"),
        "c": make(scope, "c", name="Cy").copy(deleted_at=timezone.now()),
    }
    record_store.write(scope, list(records.values()), [])
    theirs = Scope(other_tenant.id, IntegrationFactory(tenant=other_tenant).id, "contacts")
    records["theirs"] = make(theirs, "z", name="Zed")
    record_store.write(theirs, [records["theirs"]], [])
    return integration, records
