"""Coalesced wake-ups: many messages, few broker round trips, none lost or mixed up."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from castiel import queue
from castiel.wakeups import Coalescer


class Recorder:
    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[str, list, str]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, func_path, calls, *, cluster):
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                raise ConnectionError("broker down")
            self.calls.append((func_path, list(calls), cluster))

    def sent(self) -> int:
        with self.lock:
            return sum(len(calls) for _, calls, _ in self.calls)


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_messages_added_together_leave_in_one_send_each_with_its_own_correlation_id():
    send = Recorder()
    coalescer = Coalescer(send)

    def producer(n):
        for i in range(10):
            coalescer.add("app.tasks.work", "castiel-webhooks", [f"{n}-{i}"], f"corr-{n}-{i}", 0.2)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: send.sent() == 30)
    assert len(send.calls) == 1  # thirty messages, one round trip
    func_path, calls, cluster = send.calls[0]
    assert (func_path, cluster) == ("app.tasks.work", "castiel-webhooks")
    assert sorted((args[0], kwargs, corr) for args, kwargs, corr in calls) == sorted(
        (f"{n}-{i}", {}, f"corr-{n}-{i}") for n in range(3) for i in range(10)
    )


def test_different_tasks_and_queues_are_sent_separately():
    send = Recorder()
    coalescer = Coalescer(send)
    coalescer.add("a.task", "q1", [1], "c1", 0.1)
    coalescer.add("a.task", "q2", [2], "c2", 0.1)
    coalescer.add("b.task", "q1", [3], "c3", 0.1)
    wait_for(lambda: send.sent() == 3)
    assert sorted((f, c, [a for a, _, _ in calls]) for f, calls, c in send.calls) == [
        ("a.task", "q1", [[1]]),
        ("a.task", "q2", [[2]]),
        ("b.task", "q1", [[3]]),
    ]


def test_a_broker_failure_is_logged_and_later_messages_still_go(caplog):
    send = Recorder(fail_first=1)
    coalescer = Coalescer(send)
    coalescer.add("a.task", "q", ["lost"], "c1", 0.01)
    wait_for(lambda: "queue.coalesced_send_failed" in caplog.text)
    coalescer.add("a.task", "q", ["sent"], "c2", 0.01)
    wait_for(lambda: send.sent() == 1)
    assert send.calls[0][1][0][0] == ["sent"]


def test_flush_sends_what_is_pending_at_once():
    """What atexit runs when a web process stops: nothing waits for the next window."""
    send = Recorder()
    coalescer = Coalescer(send)
    coalescer.add("a.task", "q", ["pending"], "c", 60.0)
    assert coalescer.flush() == 1
    assert send.sent() == 1
    assert coalescer.flush() == 0


def test_a_forked_child_does_not_send_its_parents_messages():
    send = Recorder()
    coalescer = Coalescer(send)
    coalescer.add("a.task", "q", ["parent"], "c", 60.0)
    coalescer._pid = -1  # as seen from a child process after fork()
    coalescer.add("a.task", "q", ["child"], "c", 60.0)
    coalescer.flush()
    assert [calls[0][0] for _, calls, _ in send.calls] == [["child"]]


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_enqueue_coalesces_on_redis_and_sends_at_once_otherwise(monkeypatch):
    cluster = queue.cluster_for("maintenance")
    broker = get_broker(cluster)
    broker.purge_queue()
    pushes = []
    real_push = queue._push
    monkeypatch.setattr(queue, "_push", lambda b, p: (pushes.append(len(p)), real_push(b, p)))
    for i in range(20):  # twenty requests, each committing on its own
        queue.enqueue("tests.foundation.tasks.record", f"m{i}", kind="maintenance", coalesce=True)
    if settings.CASTIEL_BROKER == "redis":
        wait_for(lambda: broker.queue_size() == 20)
        assert len(pushes) < 5, pushes  # not one round trip per message
    else:  # the ORM broker (embedded default): no background thread, each sent on commit
        assert broker.queue_size() == 20 and pushes == [1] * 20
    messages = []
    while (task := broker.dequeue()) is not None:
        for _ack_id, package in task:
            messages.append(SignedPackage.loads(package)["args"][2][0])
            broker.acknowledge(_ack_id)
        if len(messages) == 20:
            break
    assert sorted(messages) == sorted(f"m{i}" for i in range(20))
    broker.purge_queue()


@pytest.mark.parametrize("compressed", [False, True])
def test_packages_are_byte_for_byte_what_django_q2_signs(monkeypatch, compressed):
    """send_now signs with one reused signer; a worker must read exactly what django-q2's
    own SignedPackage.dumps would have given it."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "COMPRESSED", compressed)
    monkeypatch.setattr("django.core.signing.time.time", lambda: 1_800_000_000.0)
    pushed = []
    monkeypatch.setattr(queue, "_push", lambda broker, packages: pushed.extend(packages))
    calls = [([f"event-{i}"], {}, f"corr-{i}") for i in range(3)]
    queue.send_now("tests.foundation.tasks.record", calls, cluster=queue.cluster_for("webhooks"))

    assert len(pushed) == 3
    for i, package in enumerate(pushed):
        task = SignedPackage.loads(package)
        assert task["args"] == ("tests.foundation.tasks.record", f"corr-{i}", [f"event-{i}"], {})
        assert package == SignedPackage.dumps(task, compressed=compressed)
