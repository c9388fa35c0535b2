"""``/healthz``'s ``record_store`` check: the store in use, named, and whether it answers.

Unreachable is ``degraded``, not ``fail`` (still 200): the API answers 503 for records, syncs
and webhooks are retried with backoff, everything else keeps working — and a load balancer
must not take the web servers out of rotation for it.
"""

from __future__ import annotations

from castiel.observability.health import DEGRADED, OK
from syncing.records.stores import get_store
from syncing.records.stores.base import RecordStoreUnavailable


def check_record_store() -> tuple[str, str]:
    store = get_store()
    try:
        store.ping()
    except RecordStoreUnavailable as exc:
        return DEGRADED, f"{store.describe()}: unavailable ({exc.reason[:200]})"
    return OK, store.describe()
