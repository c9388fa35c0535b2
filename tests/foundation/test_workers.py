"""Real qcluster processes: correlation ids reach task logs; heartbeats drive /healthz."""

from __future__ import annotations

import json
import time

import pytest
from django.test import RequestFactory, override_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from castiel.observability.models import WorkerHeartbeat
from castiel.observability.views import metrics_view
from castiel.queue import enqueue
from tests.support.processes import manage


class QueueSomething(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        enqueue("tests.foundation.tasks.record", request.data["marker"], kind="inbound")
        return Response({"queued": True}, status=202)


urlpatterns = [path("api/v1/queue-something/", QueueSomething.as_view())]

FAST_HEARTBEAT = {"CASTIEL_HEARTBEAT_INTERVAL": "0.3", "CASTIEL_HEARTBEAT_STALE_AFTER": "2"}


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=__name__)
def test_correlation_id_of_a_request_appears_in_the_log_lines_of_its_task(client, spawn):
    response = client.post(
        "/api/v1/queue-something/",
        {"marker": "m-1"},
        content_type="application/json",
        HTTP_X_CORRELATION_ID="corr-abc-123",
    )
    assert response.status_code == 202
    worker = spawn(*manage("qcluster"), env=FAST_HEARTBEAT, name="qcluster")
    worker.wait_for(lambda: '"test.marker"' in worker.output, timeout=60, what="the task to run")
    worker.wait_for(lambda: '"task.finished"' in worker.output, timeout=10, what="task end")
    # Only this task's lines: scheduled tasks (declared by apps) may run in the same worker.
    task_lines = [
        line
        for line in _json_lines(worker.output)
        if line.get("event") == "test.marker"
        or (
            line.get("event") in ("task.started", "task.finished")
            and line.get("task") == "tests.foundation.tasks.record"
        )
    ]
    assert {line["event"] for line in task_lines} == {
        "task.started",
        "test.marker",
        "task.finished",
    }
    assert all(line["correlation_id"] == "corr-abc-123" for line in task_lines)
    execution_ids = {line["execution_id"] for line in task_lines}
    assert len(execution_ids) == 1 and None not in execution_ids

    # The worker's counters are visible from the web process (Prometheus multiprocess mode).
    metrics = metrics_view(RequestFactory().get("/metrics")).content.decode()
    assert 'castiel_tasks_total{outcome="ok",task="tests.foundation.tasks.record"}' in metrics


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
@override_settings(CASTIEL_HEARTBEAT_STALE_AFTER=2)
def test_a_stopped_worker_turns_the_heartbeat_check_to_503(client, spawn):
    before = client.get("/healthz")
    assert before.status_code == 503
    assert before.json()["checks"]["workers"]["status"] == "fail"

    worker = spawn(*manage("qcluster"), env=FAST_HEARTBEAT, name="qcluster")
    worker.wait_for(
        lambda: client.get("/healthz").status_code == 200, timeout=60, what="a live heartbeat"
    )
    body = client.get("/healthz").json()
    statuses = {name: check["status"] for name, check in body["checks"].items()}
    # Apps add their own checks (register_check); the foundation's four must be there and
    # everything must be ok.
    assert {"database", "cache", "broker", "workers"} <= statuses.keys()
    assert set(statuses.values()) == {"ok"}, statuses

    worker.kill()
    killed_at = time.monotonic()
    deadline = killed_at + 20
    while client.get("/healthz").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = client.get("/healthz")
    rows = list(WorkerHeartbeat.objects.values("pid", "last_seen"))
    assert after.status_code == 503, (
        f"still healthy {time.monotonic() - killed_at:.1f}s after: {rows}"
    )
    assert time.monotonic() - killed_at >= 1.5, "turned unhealthy before the heartbeat went stale"
    assert after.json()["checks"]["workers"]["status"] == "fail"
    assert after.json()["checks"]["database"]["status"] == "ok"
