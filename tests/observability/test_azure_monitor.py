"""Azure Monitor through Microsoft's distro, for real: a gunicorn web server with
APPLICATIONINSIGHTS_CONNECTION_STRING pointing at a local HTTPS fake of the Application
Insights ingestion endpoint (``IngestionEndpoint``). Nothing inside the SDK is mocked: the
distro builds its pipeline, the exporter sends its envelopes over TLS, and the fake decodes
them. Nothing leaves the machine (statsbeat, the control plane and the VM metadata probe are
switched off with the SDK's own variables)."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from castiel.tenancy import services as tenancy
from console.demo import demo_seed
from syncing.models import SyncTask
from tests.credentials.tls import make_tls_material
from tests.support.https import serving_https
from tests.webhooks import live

pytestmark = [pytest.mark.embedded, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INSTRUMENTATION_KEY = str(uuid.uuid4())


class Ingestion:
    def __init__(self):
        self.envelopes: list[dict] = []
        self.lock = threading.Lock()

    def wait_for(self, predicate, *, timeout: float = 60.0, what: str = ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        with self.lock:
            seen = [
                (e["name"].rsplit(".", 1)[-1], e["data"]["baseData"].get("name"))
                for e in self.envelopes
                if not e["name"].endswith("Metric")
            ]
        raise AssertionError(f"timed out waiting for {what}; received {seen}")

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [e for e in self.envelopes if e["name"].endswith("." + kind)]


def _handler(ingestion: Ingestion):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received = []
            if self.path.rstrip("/").endswith("/v2.1/track"):
                text = body.decode()
                try:
                    parsed = json.loads(text)
                    received = parsed if isinstance(parsed, list) else [parsed]
                except json.JSONDecodeError:  # newline-delimited
                    received = [json.loads(line) for line in text.splitlines() if line.strip()]
                with ingestion.lock:
                    ingestion.envelopes.extend(received)
            answer = json.dumps(
                {"itemsReceived": len(received), "itemsAccepted": len(received), "errors": []}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


def test_requests_dependencies_and_logs_reach_application_insights(spawn, tmp_path):
    tls = make_tls_material(tmp_path / "tls")
    ingestion = Ingestion()
    with serving_https(_handler(ingestion), tls.server_context()) as endpoint:
        env = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={endpoint}/;"
                f"LiveEndpoint={endpoint}/"
            ),
            "REQUESTS_CA_BUNDLE": tls.ca_path,
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
            "OTEL_SERVICE_NAME": "castiel-web",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            # The distro samples at most 5 traces/s by default (rate limited): on a busy
            # machine the dry run's trace could be the one dropped. Keep every trace here.
            "OTEL_TRACES_SAMPLER": "microsoft.fixed_percentage",
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
        }
        web_url, _web = live.start_castiel(spawn, env=env, workers=2)
        tenant = tenancy.tenant_create(name="Azure tenant")
        demo_seed(tenant=tenant, base_url=web_url, sandbox_url=web_url)
        _key, raw_key = tenancy.api_key_create(tenant=tenant, name="azure")
        task = SyncTask.objects.get(tenant=tenant, entity_type="contacts")

        # A dry run reads the provider's first page inside the request: a request with a
        # dependency (the outbound call), and the provider's own request under it.
        response = requests.post(
            f"{web_url}/api/v1/sync-tasks/{task.pk}/dry-run/",
            headers={"Authorization": f"Bearer {raw_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:500]

        def dry_run_request():
            return [
                e
                for e in ingestion.of("Request")
                if "dry-run" in e["data"]["baseData"].get("url", "")
            ]

        ingestion.wait_for(dry_run_request, what="the dry run's request telemetry")
        [request] = dry_run_request()
        operation = request["tags"]["ai.operation.id"]
        assert request["iKey"] == INSTRUMENTATION_KEY
        assert request["data"]["baseData"]["responseCode"] == "200"
        assert request["data"]["baseData"]["success"] is True
        assert request["tags"]["ai.cloud.role"] == "castiel-web"

        def calls_to_the_sandbox():
            return [
                e
                for e in ingestion.of("RemoteDependency")
                if e["tags"]["ai.operation.id"] == operation
                and "/sandbox/demo/contacts/" in e["data"]["baseData"].get("data", "")
            ]

        ingestion.wait_for(calls_to_the_sandbox, what="the dependency telemetry")
        call = calls_to_the_sandbox()[0]
        dependency = call["data"]["baseData"]
        assert dependency["type"] == "HTTP" and dependency["resultCode"] == "200"
        assert call["tags"]["ai.operation.parentId"] == request["data"]["baseData"]["id"]
        # The sandbox's side is a request of the same operation, under that dependency.
        ingestion.wait_for(
            lambda: [
                e
                for e in ingestion.of("Request")
                if e["tags"]["ai.operation.id"] == operation
                and e["tags"].get("ai.operation.parentId") == dependency["id"]
            ],
            what="the provider's request under the dependency",
        )
        # Logs are correlated: the outbound client's log line of that call, in the operation,
        # rendered by Castiel's formatter (ids in, secrets out).
        ingestion.wait_for(
            lambda: [
                e
                for e in ingestion.of("Message")
                if e["tags"].get("ai.operation.id") == operation
                and '"outbound.request"' in e["data"]["baseData"]["message"]
            ],
            what="the correlated log line",
        )
        with ingestion.lock:
            everything = json.dumps(ingestion.envelopes)
        assert raw_key not in everything
        assert raw_key.split("_", 2)[2] not in everything  # the secret part
