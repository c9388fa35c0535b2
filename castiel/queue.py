"""Queueing work for the qcluster workers, with the correlation id carried along.

Every piece of work Castiel queues goes through :func:`enqueue`: it picks the cluster for the
kind of work (inbound, outbound, webhooks, maintenance), sends the message only after the
current transaction commits (a worker must never look for a row that is not there yet, and a
rolled-back change must not be pushed), and wraps the call in :func:`run`, which restores the
correlation id and gives the run its own execution id, log context and metrics.

The message is only a wake-up call: the state of the work lives in the database (see
DESIGN.md), so a lost message is recovered by the reaper, never by the broker.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from castiel.observability import metrics
from castiel.observability.context import bound, ensure_correlation_id, new_id
from castiel.observability.logging import get_logger

log = get_logger(__name__)


def cluster_for(kind: str) -> str:
    if kind not in settings.WORK_KINDS:
        raise ValueError(f"unknown work kind {kind!r}; expected one of {settings.WORK_KINDS}")
    if settings.Q_CLUSTER.get("ALT_CLUSTERS"):
        return kind
    return settings.Q_CLUSTER["name"]


def all_clusters() -> list[str]:
    return sorted({cluster_for(kind) for kind in settings.WORK_KINDS})


def enqueue(func_path: str, *args: Any, kind: str, **kwargs: Any) -> None:
    """Queue ``func_path(*args, **kwargs)`` on the cluster for ``kind`` after commit."""
    from django_q.tasks import async_task

    correlation_id = ensure_correlation_id()
    cluster = cluster_for(kind)
    name = func_path.rsplit(".", 1)[-1]

    def send() -> None:
        async_task(
            "castiel.queue.run",
            func_path,
            correlation_id,
            list(args),
            kwargs,
            cluster=cluster,
            task_name=f"{name}:{new_id()[:12]}",
        )
        log.debug("task.enqueued", task=func_path, cluster=cluster)

    transaction.on_commit(send)


def run(func_path: str, correlation_id: str | None, args: list, kwargs: dict) -> Any:
    """Worker-side wrapper: bind ids, log start/end, count and time the run."""
    execution_id = new_id()
    with bound(correlation_id=correlation_id or new_id(), execution_id=execution_id):
        log.info("task.started", task=func_path)
        started = time.perf_counter()
        outcome = "error"
        try:
            result = import_string(func_path)(*args, **kwargs)
            outcome = "ok"
            return result
        except Exception:
            log.exception("task.failed", task=func_path)
            raise
        finally:
            duration = time.perf_counter() - started
            metrics.TASKS.labels(func_path, outcome).inc()
            metrics.TASK_DURATION.labels(func_path).observe(duration)
            log.info(
                "task.finished",
                task=func_path,
                outcome=outcome,
                duration_ms=round(duration * 1000, 1),
            )


def queue_depths() -> dict[str, int]:
    from django_q.brokers import get_broker

    depths = {}
    for cluster in all_clusters():
        try:
            depths[cluster] = int(get_broker(cluster).queue_size() or 0)
        except Exception:  # a scrape must not fail because the broker hiccups
            log.warning("queue.depth_unavailable", cluster=cluster, exc_info=True)
    return depths
