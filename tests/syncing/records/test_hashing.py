"""Record ids and content hashes are stored: the same input must give the same bytes forever."""

from __future__ import annotations

import datetime
import uuid

from syncing.records.hashing import canonical_json, content_hash, record_id


def test_the_content_hash_of_a_record_never_changes():
    """Every stored record's hash was computed this way: a different encoding (key order,
    separators, escaping, non-JSON values) would make every record look changed."""
    data = {
        "b": 1,
        "a": "é",
        "c": [1.5, None, True],
        "d": {"z": "\n", "y": datetime.date(2026, 1, 2)},
    }
    assert (
        canonical_json(data)
        == '{"a":"é","b":1,"c":[1.5,null,true],"d":{"y":"2026-01-02","z":"\\n"}}'
    )
    assert content_hash(data) == "5f8512e0ce7e07317a747a49a6bcd0904e00ddd48d2eea44fb0e90eb6da9f2c0"


def test_a_record_id_is_the_uuid5_of_its_scope_and_external_id():
    tenant, integration = uuid.UUID(int=1), uuid.UUID(int=2)
    rid = record_id(tenant, integration, "contacts", "42")
    assert rid == record_id(tenant, integration, "contacts", "42") and rid.version == 5
    assert rid != record_id(tenant, integration, "deals", "42")
