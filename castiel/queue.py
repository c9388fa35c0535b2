"""Queueing work for the qcluster workers, with the correlation id carried along.

Every piece of work Castiel queues goes through :func:`enqueue`: it picks the cluster for the
kind of work (inbound, outbound, webhooks, maintenance), sends the message only after the
current transaction commits (a worker must never look for a row that is not there yet, and a
rolled-back change must not be pushed), and wraps the call in :func:`run`, which restores the
correlation id and gives the run its own execution id, log context and metrics. While tracing
is on (castiel/observability/tracing.py) the message also carries the trace context of the
code that queued it, and :func:`run` continues that trace in the worker.

The message is only a wake-up call: the state of the work lives in the database (see
docs/architecture.md), so a lost message is recovered by the reaper, never by the broker.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from castiel.observability import metrics, tracing
from castiel.observability.context import bound, ensure_correlation_id, new_id
from castiel.observability.logging import get_logger
from castiel.wakeups import Coalescer

log = get_logger(__name__)


def cluster_for(kind: str) -> str:
    if kind not in settings.WORK_KINDS:
        raise ValueError(f"unknown work kind {kind!r}; expected one of {settings.WORK_KINDS}")
    if settings.Q_CLUSTER.get("ALT_CLUSTERS"):
        return settings.CASTIEL_CLUSTER_NAMES[kind]
    return settings.Q_CLUSTER["name"]


def all_clusters() -> list[str]:
    return sorted({cluster_for(kind) for kind in settings.WORK_KINDS})


def enqueue(func_path: str, *args: Any, kind: str, coalesce: bool = False, **kwargs: Any) -> None:
    """Queue ``func_path(*args, **kwargs)`` on the cluster for ``kind`` after commit.

    ``coalesce=True`` lets a web process push this message together with those of other
    requests, up to ``CASTIEL_WAKEUP_COALESCE_MS`` later (castiel/wakeups.py) — only for work
    a sweeper finds again from the database if the message is lost.
    """
    if coalesce and not kwargs and _coalescing():
        origin = _origin()
        cluster = cluster_for(kind)
        delay = settings.CASTIEL_WAKEUP_COALESCE_MS / 1000
        transaction.on_commit(lambda: _coalescer.add(func_path, cluster, list(args), origin, delay))
        return
    _enqueue_after_commit(func_path, [(list(args), kwargs)], kind=kind)


def _coalescing() -> bool:
    from django_q.conf import Conf

    return (
        settings.CASTIEL_WAKEUP_COALESCE_MS > 0
        and settings.CASTIEL_BROKER == "redis"
        and not Conf.SYNC
    )


def enqueue_many(func_path: str, arg_lists: Iterable[Iterable[Any]], *, kind: str) -> None:
    """Queue ``func_path(*args)`` once per args in ``arg_lists``, after commit, in ONE broker
    round trip (a multi-value ``RPUSH`` on Redis, one ``bulk_create`` on the ORM broker).

    The scheduler claims up to a hundred tasks per transaction and the push dispatcher
    several batches: one round trip per message made a 10,000-task tick several times
    slower than the claim itself.
    """
    calls = [(list(args), {}) for args in arg_lists]
    if calls:
        _enqueue_after_commit(func_path, calls, kind=kind)


def _origin() -> str | tuple[str, dict]:
    """Where a message comes from: the correlation id, and with tracing on the trace context
    too (the wake-up coalescer passes this along as it is)."""
    correlation_id = ensure_correlation_id()
    carrier = tracing.inject()
    return correlation_id if carrier is None else (correlation_id, carrier)


def _run_args(func_path: str, origin, args: list, kwargs: dict) -> tuple:
    """:func:`run`'s arguments. Without a trace context the message is exactly what it was
    before tracing existed (workers of the previous release run it)."""
    if isinstance(origin, tuple):
        return (func_path, origin[0], args, kwargs, origin[1])
    return (func_path, origin, args, kwargs)


def _enqueue_after_commit(func_path: str, calls: list[tuple[list, dict]], *, kind: str) -> None:
    origin = _origin()
    cluster = cluster_for(kind)

    def send() -> None:
        send_now(func_path, [(a, k, origin) for a, k in calls], cluster=cluster)
        log.debug("task.enqueued", task=func_path, cluster=cluster, count=len(calls))

    transaction.on_commit(send)


def send_now(func_path: str, calls: list[tuple[list, dict, Any]], *, cluster: str) -> None:
    """Push ``func_path(*args, **kwargs)`` per ``(args, kwargs, origin)`` in ``calls`` (origin:
    a correlation id, or ``(correlation id, trace context)`` — see :func:`_origin`).

    Build django-q2 packages exactly as ``async_task`` does and push them together.

    ``async_task`` is used as is when django-q2 runs tasks synchronously (tests); otherwise
    packages are built here because ``async_task`` also humanises an id, logs one INFO line
    and makes one broker round trip per message — most of the cost of a large batch.
    """
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signals import pre_enqueue
    from django_q.signing import PickleSerializer
    from django_q.tasks import async_task

    name = func_path.rsplit(".", 1)[-1]
    if Conf.SYNC:
        for args, kwargs, origin in calls:
            async_task(
                "castiel.queue.run",
                *_run_args(func_path, origin, args, kwargs),
                cluster=cluster,
                task_name=f"{name}:{new_id()[:12]}",
            )
        return
    started = timezone.now()
    signer = _signer(Conf.SECRET_KEY, Conf.PREFIX)
    packages = []
    for args, kwargs, origin in calls:
        task_id = uuid.uuid4().hex
        task = {
            "id": task_id,
            "name": f"{name}:{task_id[:12]}",
            "func": "castiel.queue.run",
            "args": _run_args(func_path, origin, args, kwargs),
            "cluster": cluster,
            "kwargs": {},
            "started": started,
        }
        if Conf.CACHED:
            task["cached"] = Conf.CACHED
        if Conf.ACK_FAILURES:
            task["ack_failure"] = Conf.ACK_FAILURES
        pre_enqueue.send(sender="django_q", task=task)
        # What django-q2's SignedPackage.dumps(task) returns, with one signer for all.
        packages.append(
            signer.sign_object(task, serializer=PickleSerializer, compress=Conf.COMPRESSED)
        )
    _push(get_broker(cluster), packages)


@functools.cache
def _signer(key: str, salt: str):
    """The signer of queued packages. django-q2's ``SignedPackage.dumps`` is Django's
    ``signing.dumps``, which builds a ``TimestampSigner`` for every message — half of a
    message's CPU (docs/benchmarks.md, "Session 9"): for a web process pushing the wake-ups of
    every accepted delivery, one per key and salt signs the same packages."""
    from django.core.signing import TimestampSigner

    return TimestampSigner(key=key, salt=salt)


def _push(broker, packages: list) -> None:
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    if isinstance(broker, Redis):
        broker.connection.rpush(broker.list_key, *packages)
    elif isinstance(broker, ORM):
        from django_q.conf import Conf
        from django_q.models import OrmQ

        now = timezone.now()
        OrmQ.objects.using(Conf.ORM).bulk_create(
            [OrmQ(key=broker.list_key or Conf.CLUSTER_NAME, payload=p, lock=now) for p in packages]
        )
    else:  # any other django-q2 broker: one message at a time
        for package in packages:
            broker.enqueue(package)


_coalescer = Coalescer(send_now)

# Entry points that moved: messages and schedule rows written before an upgrade still name the
# old path (schedule rows are rewritten by the next migrate; messages are not).
RENAMED = {
    "castiel.ratelimit.tasks.delete_expired_counters": "ratelimit.tasks.delete_expired_counters",
}


def run(
    func_path: str,
    correlation_id: str | None,
    args: list,
    kwargs: dict,
    trace: dict | None = None,
) -> Any:
    """Worker-side wrapper: bind ids, continue the trace, log start/end, count and time the
    run."""
    execution_id = new_id()
    func_path = RENAMED.get(func_path, func_path)
    with bound(correlation_id=correlation_id or new_id(), execution_id=execution_id):
        if tracing.enabled():
            with tracing.task_span(func_path, trace):
                return _execute(func_path, args, kwargs)
        return _execute(func_path, args, kwargs)


def _execute(func_path: str, args: list, kwargs: dict) -> Any:
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


def depth_metric():
    """Scrape-time ``castiel_queue_depth`` (registered by ``CastielConfig.ready``)."""
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(
        "castiel_queue_depth", "Tasks waiting in each worker queue", labels=["cluster"]
    )
    for cluster, depth in queue_depths().items():
        family.add_metric([cluster], depth)
    yield family
