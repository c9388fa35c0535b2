"""Traces across processes, for real: a gunicorn web server and a qcluster exporting over
OTLP/HTTP to a local receiver that decodes the protobuf (tests/observability/otlp_receiver.py).

One signed webhook delivery is one trace: the receipt (web) → its processing, the record
upsert and the push rule (worker) → the outbound dispatch and push (worker) → the provider
call (the worker's HTTP client) → the provider's side (the built-in sandbox, served by the
web server), each span the child of the one before, across three processes; and no secret
and no record field in any attribute. Then the exporter stops: requests still succeed, and
the dropped-span metric rises.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from castiel import queue
from castiel.observability.context import bound, new_id
from castiel.tenancy import services as tenancy
from console.demo import demo_seed
from sandbox.models import SandboxAccount, SandboxObject
from syncing.models import OutboundChange, SyncRun
from tests.observability.otlp_receiver import ReceivedSpan, otel_env, running_receiver
from tests.support.processes import manage
from tests.webhooks import live
from tests.webhooks.support import standard_headers
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "zebulon.tracecheck@leakcheck.example"
PHONE = "+1 415 555 7319"
NAME = "Zebulon"


def _headers(django_style: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("HTTP_").replace("_", "-").title(): v for k, v in django_style.items()}


def test_one_webhook_delivery_is_one_trace_across_processes(spawn, tmp_path):
    with running_receiver() as receiver:
        # The web server's exporter waits up to 10 s for an export: a request that waited for
        # the exporter would take that long (see the outage below).
        web_url, web = live.start_castiel(
            spawn,
            env=otel_env(receiver.url, "castiel-web", OTEL_EXPORTER_OTLP_TIMEOUT="10"),
            workers=2,
        )
        tenant = tenancy.tenant_create(name="Traced tenant")
        demo = demo_seed(tenant=tenant, base_url=web_url, sandbox_url=web_url)
        worker = spawn(
            *manage("qcluster"),
            env={**live.secret_env(), **otel_env(receiver.url, "castiel-worker")},
            name="qcluster",
        )
        # The demo's first pull has run (its own traces): the webhook below updates a record.
        live.wait_until(
            lambda: SyncRun.objects.filter(task__entity_type="contacts", status="succeeded"),
            timeout=60,
            what="the first contacts pull",
        )
        account = SandboxAccount.objects.get(slug="demo")
        contact = SandboxObject.objects.filter(account=account, collection="contacts").first()
        data = {
            **contact.data,
            "id": contact.pk,
            "first_name": NAME,
            "email": EMAIL,
            "phone": PHONE,
            "updated_at": timezone.now().isoformat(),
        }
        event_id = f"evt_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "id": event_id,
                "type": "contacts.updated",
                "created_at": data["updated_at"],
                "data": data,
            }
        ).encode()
        signed = standard_headers(account.webhook_secret, body, event_id)
        response = requests.post(
            demo.webhook_url,
            data=body,
            headers={"Content-Type": "application/json", **_headers(signed)},
            timeout=10,
        )
        assert response.status_code in (200, 202), response.text
        correlation_id = response.headers["X-Correlation-ID"]

        # The push rule turned the event into a lead, pushed to the sandbox.
        live.wait_until(
            lambda: OutboundChange.objects.filter(
                entity_type="leads", status="succeeded", correlation_id=correlation_id
            ).exists(),
            timeout=60,
            what="the lead pushed",
        )
        receipt = receiver.wait_for(
            lambda: receiver.find(
                lambda s: (
                    s.kind == ReceivedSpan.SERVER
                    and s.service == "castiel-web"
                    and s.attributes.get("castiel.correlation_id") == correlation_id
                )
            ),
            what="the receipt's span",
        )[0]
        trace_id = receipt.trace_id
        # The receiver's own lean span (castiel/observability/server_span.py), the only server
        # span of the request: the Django instrumentation leaves the receiver out.
        assert receipt.scope == "castiel", receipt.scope
        assert receipt.attributes["http.method"] == "POST"
        assert receipt.attributes["http.status_code"] in (200, 202)
        roots = [s for s in receiver.trace(trace_id) if not s.parent_span_id]
        assert roots == [receipt], roots

        def provider_side():
            # The sandbox's span for the pushed lead: the far end of the trace.
            return [
                s
                for s in receiver.trace(trace_id)
                if s.kind == ReceivedSpan.SERVER
                and s.service == "castiel-web"
                and "leads" in str(s.attributes.get("http.target", ""))
                and s.attributes.get("http.method") == "POST"
            ]

        def complete_chain():
            # Parents end (and are exported) after their children: wait for every link.
            spans = {s.span_id: s for s in receiver.trace(trace_id)}
            for far_end in provider_side():
                chain = [far_end]
                while chain[-1].parent_span_id in spans:
                    chain.append(spans[chain[-1].parent_span_id])
                if not chain[-1].parent_span_id:
                    return chain
            return None

        chain = receiver.wait_for(complete_chain, what="the whole chain of the push")
        assert chain[-1] is receipt and not receipt.parent_span_id
        # From the provider's side back to the receipt: a client call made by a worker
        # (outbound push), queued tasks in the worker, the receipt in the web process.
        client = chain[1]
        assert client.kind == ReceivedSpan.CLIENT and client.service == "castiel-worker"
        assert client.scope.startswith("opentelemetry.instrumentation.requests")
        # The provider call is made inside the span of the change it pushes, named for the
        # operation, in the push task's span.
        lead = OutboundChange.objects.get(entity_type="leads", correlation_id=correlation_id)
        pushed = chain[2]
        assert pushed.name == f"push {lead.operation} leads", [s.name for s in chain]
        assert pushed.attributes["castiel.change"] == str(lead.pk)
        assert pushed.attributes["castiel.tenant"] == str(tenant.pk)
        assert pushed.attributes["castiel.integration"] == str(lead.integration_id)
        assert pushed.attributes["castiel.outcome"] == "succeeded"
        assert chain[3].kind == ReceivedSpan.CONSUMER
        assert chain[3].attributes["castiel.task"] == "syncing.tasks.push_outbound_batch"
        tasks = [s for s in chain if s.kind == ReceivedSpan.CONSUMER]
        assert all(s.service == "castiel-worker" for s in tasks)
        task_names = [s.attributes["castiel.task"] for s in reversed(tasks)]
        assert task_names[0] == "webhooks.tasks.process_event", task_names
        assert any("outbound" in name or "push" in name for name in task_names[1:]), task_names
        # Every task span names the correlation id and its own execution id.
        for task in tasks:
            assert task.attributes["castiel.correlation_id"] == correlation_id
            assert re.fullmatch(r"[0-9a-f]{32}", task.attributes["castiel.execution_id"])
            assert task.attributes["castiel.outcome"] == "ok"
            assert task.attributes["messaging.destination.name"] == settings.Q_CLUSTER["name"]
        assert "webhooks/" in receipt.attributes["http.route"]
        # Each follow-up action of the event has its span, a child of the processing task's;
        # the push rule's is the one the outbound work was queued from.
        processing = tasks[-1]
        actions = {
            s.name: s
            for s in receiver.trace(trace_id)
            if s.parent_span_id == processing.span_id and s.name.startswith("webhook.action ")
        }
        assert "webhook.action push.evaluate_rules" in actions, sorted(actions)
        delivered = WebhookEvent.objects.get(pk=processing.attributes["castiel.event"])
        assert delivered.correlation_id == correlation_id
        for action in actions.values():
            assert action.attributes["castiel.outcome"] == "ok"
            assert action.attributes["castiel.event"] == str(delivered.pk)
            assert action.attributes["castiel.tenant"] == str(tenant.pk)
        assert actions["webhook.action push.evaluate_rules"] in chain, [s.name for s in chain]

        # No secret, no record field in any attribute of any span anyone exported.
        secrets = [account.webhook_secret, signed["HTTP_WEBHOOK_SIGNATURE"].split(",", 1)[1]]
        record_values = [EMAIL, PHONE, NAME, EMAIL.split("@")[0]]
        for span in receiver.find(lambda s: True):
            flat = json.dumps(span.attributes)
            for value in secrets + record_values:
                assert value not in flat, (span.name, span.attributes)

        # The logs and the trace find each other: the worker's log lines of this delivery carry
        # its correlation id and the trace id.
        lines = [
            json.loads(line)
            for line in worker.output.splitlines()
            if line.startswith("{") and correlation_id in line
        ]
        assert lines and all(line.get("trace_id") == trace_id for line in lines), lines[:3]

        # The exporter stops: requests still succeed, quickly, and the lost spans are counted.
        before = _dropped(web_url)
        receiver.stop()
        for _ in range(20):
            started = time.perf_counter()
            answer = requests.get(f"{web_url}/sandbox/demo/contacts/", timeout=10)
            assert answer.status_code == 200
            assert time.perf_counter() - started < 5.0
        live.wait_until(lambda: _dropped(web_url) > before, timeout=45, what="dropped spans")
        assert web.popen.poll() is None


def _dropped(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("castiel_trace_spans_dropped_total{")
    )


def test_a_worker_exports_its_spans_when_it_recycles_and_when_the_cluster_stops(spawn):
    """django-q2 workers leave through multiprocessing, which skips ``atexit``: without the
    exit flush (tracing._ExitFlush) a worker's last spans died with it. The batch processor's
    schedule delay is two minutes here, so only that flush can export them in time."""
    # One worker, recycled after two tasks; no scheduled task may take a turn on it.
    Schedule.objects.all().delete()
    with running_receiver() as receiver:
        worker = spawn(
            *manage("qcluster"),
            env={
                **otel_env(receiver.url, "castiel-worker", OTEL_BSP_SCHEDULE_DELAY="120000"),
                "DJANGO_SETTINGS_MODULE": "tests.observability.recycle_settings",
                "Q_WORKERS": "1",
            },
            name="qcluster",
        )

        def run_task() -> str:
            correlation_id = new_id()
            with bound(correlation_id=correlation_id), transaction.atomic():
                queue.enqueue("webhooks.tasks.requeue_due", kind="webhooks")
            worker.wait_for(
                lambda: any(
                    '"task.finished"' in line and correlation_id in line
                    for line in worker.output.splitlines()
                ),
                timeout=60,
                what=f"task {correlation_id}",
            )
            return correlation_id

        def exported(correlation_id: str) -> list[ReceivedSpan]:
            return receiver.find(
                lambda s: (
                    s.kind == ReceivedSpan.CONSUMER
                    and s.attributes.get("castiel.correlation_id") == correlation_id
                )
            )

        first = run_task()
        time.sleep(1.0)
        assert not exported(first), "exported before the worker exited: the test proves nothing"
        # The second task recycles the worker: both its tasks' spans leave with it (django-q2
        # logs the recycling at INFO, below Castiel's level for it).
        second = run_task()
        receiver.wait_for(lambda: exported(first) and exported(second), what="the spans")
        assert worker.popen.poll() is None
        # The new worker runs one task; then the cluster is stopped (SIGTERM to its main
        # process, as an orchestrator does): the span leaves with the stopping worker.
        third = run_task()
        time.sleep(1.0)
        assert not exported(third)
        worker.stop()
        [span] = receiver.wait_for(lambda: exported(third), timeout=5, what="the last span")
        assert span.name == "task webhooks.tasks.requeue_due"
        assert span.attributes["castiel.outcome"] == "ok"
