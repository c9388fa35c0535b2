"""Signed, tenant-bound continuation tokens for record stores that page with one (Cosmos DB).

A client (the records API, the admin's store list) only hands back what Castiel gave it: a
forged token, or one issued for another tenant, fails to unwrap, whatever the store would
have done with it.
"""

from __future__ import annotations

from django.core import signing

SALT = "castiel.records.cursor"
BadCursor = signing.BadSignature


def wrap(continuation: str, tenant_id) -> str:
    return signing.dumps({"t": str(tenant_id), "c": continuation}, salt=SALT, compress=True)


def unwrap(cursor: str, tenant_id) -> str:
    """The store's continuation token inside ``cursor`` (``BadCursor`` if not ours)."""
    value = signing.loads(cursor, salt=SALT)
    if not isinstance(value, dict) or value.get("t") != str(tenant_id) or "c" not in value:
        raise signing.BadSignature("another tenant's cursor")
    return value["c"]
