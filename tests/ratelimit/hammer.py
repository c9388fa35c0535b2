"""Child-process side of the exactness test: hammer one (integration, operation) for
``seconds`` and report the backend time of every admitted request.

Runs in a fresh interpreter (multiprocessing "spawn"), so it sets Django up itself; the
database backend then talks to the test database named in ``db_url``.
"""

from __future__ import annotations

import os
import random
import time


def hammer(
    *,
    kind: str,
    url: str,
    db_url: str,
    prefix: str,
    buckets: int,
    policy_spec: dict,
    tenant_id: str,
    integration_id: str,
    operation: str,
    seconds: float,
    eager: bool,
    ready,
    results,
) -> None:
    if db_url:
        os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "castiel.settings")
    import django

    django.setup()

    from ratelimit.policy import Limit, Policy, Subject

    ops = {op: Limit(*spec) for op, spec in policy_spec["operations"].items()}
    policy = Policy(
        tenant=Limit(*policy_spec["tenant"]),
        integration=Limit(*policy_spec["integrations"][integration_id]),
        operations=ops,
        default_operation=ops["fetch"],
    )
    if kind == "redis":
        from ratelimit.backends.redis import RedisBackend

        backend = RedisBackend(url, prefix=prefix, buckets=buckets)
    else:
        from ratelimit.backends.database import DatabaseBackend

        backend = DatabaseBackend(prefix=prefix, buckets=buckets)
    subject = Subject(tenant_id, integration_id, operation)
    admitted: list[int] = []
    ready.wait(timeout=120)  # every child is set up: start together
    stop_at = time.time() + seconds
    while time.time() < stop_at:
        decision = backend.acquire(subject, policy)
        # Random pauses (the request itself; a late wake-up) spread admissions across the
        # buckets, as real traffic does, so a limiter that forgot part of its window would
        # be caught over-admitting.
        if decision.allowed:
            admitted.append(round(decision.now * 1000))
            time.sleep(random.uniform(0, 0.02))
        else:
            time.sleep(
                min(decision.wait + random.uniform(0, 0.03), max(0.0, stop_at - time.time()))
            )
    if kind != "redis":
        from django.db import connection

        connection.close()
    results.put((integration_id, operation, admitted))
