"""Coalesced wake-ups: a web process pushes the messages of many requests in one round trip.

The webhook receiver answers each delivery after one INSERT; the processing message that
follows cost a Redis round trip of its own per delivery — the single largest cost left after
the insert (docs/benchmarks.md). Here a web process instead hands the message to a daemon
thread, which waits ``CASTIEL_WAKEUP_COALESCE_MS`` for more and pushes everything it has in
one ``RPUSH`` per task and queue (``castiel.queue.send_now``). Each message keeps its own
correlation id.

Only for work whose state is in the database: a message still waiting here when the process
dies is lost, exactly like a message the broker loses, and the work's own sweeper re-queues
it (for webhooks, ``webhooks-requeue-due``). Used only with the Redis broker outside of
django-q2's synchronous mode; otherwise :func:`castiel.queue.enqueue` sends at once.
Deliberately not a library: it is the smallest thing that works (a list, a lock, an event and
one thread per process), and a forked child starts its own instead of inheriting the parent's.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import defaultdict

from castiel.observability.logging import get_logger

log = get_logger(__name__)


class Coalescer:
    def __init__(self, send):
        self._send = send  # send(func_path, calls, cluster=...) — castiel.queue.send_now
        self._lock = threading.Lock()
        self._pending_event = threading.Event()
        self._pending: list[tuple[str, str, list, str]] = []
        self._pid: int | None = None

    def add(self, func_path: str, cluster: str, args: list, correlation_id: str, delay: float):
        with self._lock:
            if self._pid != os.getpid():
                self._start(delay)
            self._pending.append((func_path, cluster, args, correlation_id))
        self._pending_event.set()

    def _start(self, delay: float) -> None:
        # A child forked from a process that used this inherits its list and its lock state
        # but not its thread: it starts afresh (the parent sends its own messages).
        self._pending = []
        self._pid = os.getpid()
        threading.Thread(
            target=self._run, args=(delay,), name="castiel-wakeups", daemon=True
        ).start()
        atexit.register(self.flush)

    def _run(self, delay: float) -> None:
        while True:
            self._pending_event.wait()
            time.sleep(delay)
            # Cleared before the flush takes the list: a message added from here on either
            # makes it into this flush or sets the event again for the next one.
            self._pending_event.clear()
            self.flush()

    def flush(self) -> int:
        """Send everything pending now (also at interpreter exit); returns the messages sent."""
        with self._lock:
            batch, self._pending = self._pending, []
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for func_path, cluster, args, correlation_id in batch:
            groups[(func_path, cluster)].append((args, {}, correlation_id))
        sent = 0
        for (func_path, cluster), calls in groups.items():
            try:
                self._send(func_path, calls, cluster=cluster)
                sent += len(calls)
            except Exception:  # the broker is down: the work's sweeper re-queues it
                log.warning(
                    "queue.coalesced_send_failed", task=func_path, count=len(calls), exc_info=True
                )
        return sent
