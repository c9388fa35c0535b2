"""Worker heartbeats: every qcluster worker process proves it is alive.

A daemon thread started in each worker process (django-q2's ``post_spawn`` signal) upserts one
``WorkerHeartbeat`` row every ``CASTIEL_HEARTBEAT_INTERVAL`` seconds. ``/healthz`` reports a
cluster as down when none of its processes has beaten within
``CASTIEL_HEARTBEAT_STALE_AFTER`` seconds.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from castiel.observability.logging import get_logger

log = get_logger(__name__)
_started = threading.Event()


def beat(cluster: str, *, started_at=None) -> None:
    from castiel.observability.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        host=socket.gethostname(),
        pid=os.getpid(),
        defaults={"cluster": cluster, "last_seen": now},
        create_defaults={"cluster": cluster, "last_seen": now, "started_at": started_at or now},
    )


def prune(older_than: timedelta = timedelta(days=1)) -> int:
    from castiel.observability.models import WorkerHeartbeat

    deleted, _ = WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - older_than).delete()
    return deleted


def watch_clusters(*, since) -> list[str]:
    """Raise ``worker.kind_down`` for every expected cluster with no live worker (and
    ``worker.kind_up`` for the live ones); skipped until this process has been up for twice
    the staleness window, so a fleet that is still starting raises nothing. Returns the
    clusters that are down."""
    from castiel import events
    from castiel.observability.health import live_and_missing

    if (timezone.now() - since).total_seconds() < 2 * settings.CASTIEL_HEARTBEAT_STALE_AFTER:
        return []
    alive, missing = live_and_missing()
    for name in missing:
        events.emit(
            events.Kind.WORKER_KIND_DOWN,
            subject=("cluster", name, name),
            message=f"No worker of cluster {name!r} has beaten for "
            f"{settings.CASTIEL_HEARTBEAT_STALE_AFTER:g}s.",
        )
    for name in alive:
        events.emit(events.Kind.WORKER_KIND_UP, subject=("cluster", name, name))
    return missing


def _run(cluster: str) -> None:
    started_at = timezone.now()
    interval = settings.CASTIEL_HEARTBEAT_INTERVAL
    beats = 0
    while True:
        try:
            close_old_connections()
            beat(cluster, started_at=started_at)
            beats += 1
            if beats % 360 == 1:
                prune()
            if beats % max(1, round(60 / max(interval, 1))) == 0:  # about once a minute
                watch_clusters(since=started_at)
        except Exception:  # the heartbeat must never kill its worker
            log.warning("heartbeat.failed", exc_info=True)
            connection.close()
        threading.Event().wait(interval)


def start(cluster: str) -> None:
    """Start the heartbeat thread once in this process."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_run, args=(cluster,), name="castiel-heartbeat", daemon=True).start()


def on_worker_spawn(sender, proc_name=None, **kwargs) -> None:
    from django_q.conf import Conf

    if Conf.SYNC:
        # django-q2 runs tasks inline in the calling process (tests, sync mode) and still
        # sends post_spawn: that process is not a worker and must not report itself as one.
        return
    start(Conf.CLUSTER_NAME)
