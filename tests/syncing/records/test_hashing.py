"""Record ids and content hashes are stored: the same input must give the same bytes forever."""

from __future__ import annotations

import datetime
import json
import uuid

from syncing.records.hashing import canonical_json, content_hash, hashed, record_id, record_ids
from syncing.records.stores.base import StoredRecord


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
    assert rid == uuid.UUID("f8f39c87-19dc-525a-a0c2-63368835529b")  # stored ids depend on it


def test_the_pipeline_s_record_ids_are_the_same_ids():
    """The pipeline hashes a scope's part of the name once (record_ids): every id it makes
    must be the one record_id makes — stored records, webhooks and local creates use that."""
    tenant, integration = uuid.UUID(int=1), uuid.UUID(int=2)
    of = record_ids(tenant, integration, "contacts")
    for external_id in ("42", "", "ünïcode/ß", "a" * 300):
        assert of(external_id) == record_id(tenant, integration, "contacts", external_id)


def test_hashed_gives_the_canonical_json_and_its_hash():
    data = {"b": 1, "a": "é"}
    assert hashed(data) == (canonical_json(data), content_hash(data))


def test_a_record_s_json_is_dropped_when_its_data_changes():
    record = StoredRecord(
        id=uuid.UUID(int=3),
        tenant_id=uuid.UUID(int=1),
        integration_id=uuid.UUID(int=2),
        entity_type="contacts",
        external_id="42",
        data={"a": 1},
        content_hash=content_hash({"a": 1}),
        data_json='{"a":1}',
    )
    assert record.copy(version=2).data_json == '{"a":1}'
    assert record.copy(data={"a": 2}).data_json is None


def test_the_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces():
    """Stored content hashes depend on these exact bytes, whichever encoder builds them."""
    data = {
        "b": [1, 2.5, 1e16, 1e-05, None, True, False, 10**30],
        "a": 'quote " backslash \\ newline \n tab \t é 😀 \u2028 \x00',
        "nested": {"z": {}, "y": [], "x": (1, 2)},
        "when": datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.UTC),
        "1": "a key that sorts first",
    }
    expected = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    assert canonical_json(data) == expected
    assert canonical_json("just text") == json.dumps("just text", ensure_ascii=False)
