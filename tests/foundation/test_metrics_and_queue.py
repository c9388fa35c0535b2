"""Metrics endpoint and the queue helper's transactional behaviour."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_q.brokers import get_broker

from castiel.observability.heartbeat import beat
from castiel.queue import cluster_for, enqueue


@pytest.mark.django_db
def test_metrics_expose_request_counters_and_queue_depth(client, api):
    api.get("/api/v1/tenant/")
    body = client.get("/metrics").content.decode()
    assert 'castiel_http_requests_total{method="GET"' in body
    assert "castiel_queue_depth" in body


@pytest.mark.django_db
def test_metrics_token_is_enforced_when_configured(client, settings):
    settings.CASTIEL_METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert ok.status_code == 200


def test_unknown_work_kind_is_refused():
    with pytest.raises(ValueError, match="unknown work kind"):
        cluster_for("everything")


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_a_task_is_queued_only_when_its_transaction_commits(settings):
    broker = get_broker(cluster_for("maintenance"))  # ORM rows or a Redis list
    broker.purge_queue()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("tests.foundation.tasks.record", "rolled-back", kind="maintenance")
        raise RuntimeError("the change failed")
    assert broker.queue_size() == 0
    with transaction.atomic():
        enqueue("tests.foundation.tasks.record", "committed", kind="maintenance")
        assert broker.queue_size() == 0  # not before commit
    assert broker.queue_size() == 1
    broker.purge_queue()


@pytest.mark.django_db
def test_run_tasks_inline_runs_through_the_wrapper(run_tasks_inline, caplog):
    enqueue("tests.foundation.tasks.record", "inline", kind="inbound")
    assert run_tasks_inline() == 1
    assert any("inline" in str(r.msg) or "test.marker" in str(r.msg) for r in caplog.records)


@pytest.mark.django_db
def test_healthz_is_200_with_a_fresh_heartbeat(client, settings):
    beat(settings.Q_CLUSTER["name"])
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


@pytest.mark.embedded
def test_a_message_queued_before_an_entry_point_moved_still_runs(monkeypatch):
    """The rate limiter moved from castiel.ratelimit to ratelimit: a message (or schedule row)
    written before the upgrade names the old path and must still run the task."""
    import ratelimit.tasks
    from castiel.queue import run

    monkeypatch.setattr(ratelimit.tasks, "delete_expired_counters", lambda: "ran")
    assert run("castiel.ratelimit.tasks.delete_expired_counters", None, [], {}) == "ran"
