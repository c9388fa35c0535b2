"""Signed, tenant-bound cursors: the continuation tokens of record stores that page with one
(Cosmos DB), and the change feed's positions (``syncing.records.feed``).

A client (the records API, the admin's store list, a change-feed reader) only hands back what
Castiel gave it: a forged token, or one issued for another tenant, fails to unwrap, whatever
the store would have done with it.
"""

from __future__ import annotations

from django.core import signing

SALT = "castiel.records.cursor"
BadCursor = signing.BadSignature


def sign(value, tenant_id, *, salt: str = SALT) -> str:
    """``value`` (JSON) in a signed token bound to ``tenant_id``."""
    return signing.dumps({"t": str(tenant_id), "c": value}, salt=salt, compress=True)


def unsign(token: str, tenant_id, *, salt: str = SALT):
    """The value ``sign`` wrapped (``BadCursor`` if not ours, or another tenant's)."""
    value = signing.loads(token, salt=salt)
    if not isinstance(value, dict) or value.get("t") != str(tenant_id) or "c" not in value:
        raise signing.BadSignature("another tenant's cursor")
    return value["c"]


def wrap(continuation: str, tenant_id) -> str:
    return sign(continuation, tenant_id)


def unwrap(cursor: str, tenant_id) -> str:
    """The store's continuation token inside ``cursor`` (``BadCursor`` if not ours)."""
    return unsign(cursor, tenant_id)
