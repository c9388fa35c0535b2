"""One process of the storm test: ``python -m tests.notifications.storm <events> <kind> <start>``
raises ``events`` events of ``kind`` (``fail`` or ``recover``) about one sync task, starting
at the Unix time ``start`` (so the processes begin together)."""

from __future__ import annotations

import sys
import time

import django


def main() -> None:
    count, what, start, tenant_id = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    django.setup()
    from castiel.events import Kind, Subject, emit

    subject = Subject("synctask", "storm-task", "contacts (storm)")
    while time.time() < start:
        time.sleep(0.005)
    for n in range(count):
        if what == "fail":
            emit(
                Kind.SYNC_FAILING,
                tenant=tenant_id,
                subject=subject,
                message="HTTP 503 from the provider",
                details={"consecutive_failures": 3 + n},
            )
        else:
            emit(Kind.SYNC_RECOVERED, tenant=tenant_id, subject=subject)
    print("done", count, flush=True)


if __name__ == "__main__":
    main()
