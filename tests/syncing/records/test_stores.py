"""One test suite for both record stores (ORM and Cosmos DB against cosmosdb-server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from syncing.models import RecordChange
from syncing.records.hashing import canonical_json, content_hash, record_id
from syncing.records.stores.base import Scope, StaleRecordError, StoredRecord
from tests.factories import IntegrationFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture
def scope(tenant):
    integration = IntegrationFactory(tenant=tenant)
    return Scope(tenant.id, integration.id, "contacts")


def make(scope: Scope, external_id: str, keys=(), **data) -> StoredRecord:
    data = {"id": external_id, **data}
    now = timezone.now()
    return StoredRecord(
        id=record_id(scope.tenant_id, scope.integration_id, scope.entity_type, external_id),
        tenant_id=scope.tenant_id,
        integration_id=scope.integration_id,
        entity_type=scope.entity_type,
        external_id=external_id,
        data=data,
        content_hash=content_hash(data),
        base_data=data,
        base_hash=content_hash(data),
        match_keys=list(keys),
        synced_at=now,
        created_at=now,
    )


def test_create_read_and_iterate(record_store, scope):
    a, b = make(scope, "a", name="Ada"), make(scope, "b", name="Bob")
    record_store.write(scope, [a, b], [])
    found = record_store.get_many(scope, [a.id, b.id, uuid.uuid4()])
    assert {r.external_id: r.data for r in found.values()} == {"a": a.data, "b": b.data}
    assert record_store.get(scope.tenant_id, a.id).data == {"id": "a", "name": "Ada"}
    ids = [r.id for r in record_store.iter_scope(scope)]
    assert ids == sorted([a.id, b.id], key=str), "iterated in id order"


def test_records_of_another_tenant_are_invisible(record_store, scope, other_tenant):
    a = make(scope, "a")
    record_store.write(scope, [a], [])
    assert record_store.get(other_tenant.id, a.id) is None
    others = Scope(other_tenant.id, scope.integration_id, scope.entity_type)
    assert record_store.get_many(others, [a.id]) == {}
    assert record_store.list_page(other_tenant.id)[0] == []


def test_lookups_by_id_and_external_id_answer_only_their_scope(record_store, scope):
    """The same external id in another entity type of the integration is another record."""
    deals = Scope(scope.tenant_id, scope.integration_id, "deals")
    contact, deal = make(scope, "a"), make(deals, "a")
    record_store.write(scope, [contact], [])
    record_store.write(deals, [deal], [])
    assert list(record_store.get_many(scope, [contact.id, deal.id])) == [contact.id]
    assert record_store.find_by_external_ids(scope, ["a"])["a"].id == contact.id
    assert record_store.find_by_external_ids(deals, ["a"], lock=True)["a"].id == deal.id


def test_update_replaces_and_a_stale_write_is_refused(record_store, scope):
    a = make(scope, "a", name="Ada")
    record_store.write(scope, [a], [])
    current = record_store.get(scope.tenant_id, a.id)
    edited = record_store.local_edit(
        scope.tenant_id, a.id, {"id": "a", "name": "Ada L."}, at=timezone.now()
    )
    assert edited.version == 2 and edited.locally_modified
    with pytest.raises(StaleRecordError):
        record_store.save_record(current.copy(data={"id": "a", "name": "lost update"}))
    assert record_store.get(scope.tenant_id, a.id).data["name"] == "Ada L."


def test_creating_a_record_another_writer_inserted_is_refused(record_store, scope):
    """A page read the record as absent; a webhook inserted it meanwhile. Writing the page's
    copy over it would lose the webhook's data: the write is refused (the page is decided
    again) and the caller's transaction stays usable."""
    record_store.write(scope, [make(scope, "a", name="from the webhook")], [])
    with pytest.raises(StaleRecordError):
        record_store.write(scope, [make(scope, "b"), make(scope, "a", name="from the page")], [])
    kept = record_store.get(scope.tenant_id, make(scope, "a").id)
    assert kept.data["name"] == "from the webhook"


def test_the_orm_store_keeps_a_record_without_a_local_edit_once(scope):
    """The base is kept only while it differs from the data (a local edit waiting to go
    out); otherwise the column is empty and the record reads back whole."""
    from syncing.models import Record
    from syncing.records.stores.orm import OrmRecordStore

    record_store = OrmRecordStore()
    record_store.write(scope, [make(scope, "a", name="Ada")], [])
    rid = make(scope, "a").id
    assert Record.objects.get(id=rid).base_data is None
    synced = record_store.get(scope.tenant_id, rid)
    assert synced.base_data == synced.data == {"id": "a", "name": "Ada"}

    edited = record_store.local_edit(
        scope.tenant_id, rid, {"id": "a", "name": "Ada L."}, at=timezone.now()
    )
    assert edited.locally_modified
    assert Record.objects.get(id=rid).base_data == {"id": "a", "name": "Ada"}
    assert record_store.get(scope.tenant_id, rid).base_data == {"id": "a", "name": "Ada"}


def test_find_by_keys_sees_only_live_records(record_store, scope):
    a = make(scope, "a", keys=["email:x@y.com", "phone:+14155550100"])
    b = make(scope, "b", keys=["email:x@y.com"])
    c = make(scope, "c", keys=["email:gone@y.com"])
    record_store.write(scope, [a, b, c], [])
    record_store.save_record(
        record_store.get(scope.tenant_id, c.id).copy(deleted_at=timezone.now())
    )
    found = record_store.find_by_keys(
        scope, ["email:x@y.com", "phone:+14155550100", "email:gone@y.com", "email:none"]
    )
    assert found == {"email:x@y.com": {a.id, b.id}, "phone:+14155550100": {a.id}}


def test_full_refresh_soft_deletes_what_was_not_seen(record_store, scope):
    records = [make(scope, str(i)) for i in range(5)]
    record_store.write(scope, records, [])
    record_store.mark_seen(scope, [records[0].id, records[3].id], 1)
    at = timezone.now()
    gone = record_store.soft_delete_unseen(scope, 1, at)
    # Each one reported with its new version (their history and the change feed need it).
    assert sorted((ref.external_id, ref.version) for ref in gone) == [
        ("1", 2),
        ("2", 2),
        ("4", 2),
    ]
    assert {r.version for r in record_store.iter_scope(scope, include_deleted=True)} == {1, 2}
    live = {r.external_id for r in record_store.iter_scope(scope)}
    assert live == {"0", "3"}
    everything = {
        r.external_id: r.deleted_at for r in record_store.iter_scope(scope, include_deleted=True)
    }
    assert len(everything) == 5 and abs(everything["1"] - at) < timedelta(seconds=1)


def test_listing_pages_with_continuation_tokens(record_store, scope):
    record_store.write(scope, [make(scope, f"r{i}") for i in range(7)], [])
    seen, token = [], None
    for _ in range(10):
        page, token = record_store.list_page(scope.tenant_id, page_size=3, continuation=token)
        seen.extend(r.external_id for r in page)
        if not token:
            break
    assert sorted(seen) == sorted(f"r{i}" for i in range(7))
    assert len(seen) == 7, "no record listed twice"


def test_push_hash_is_remembered(record_store, scope):
    a = make(scope, "a")
    record_store.write(scope, [a], [])
    record_store.mark_pushed(scope.tenant_id, a.id, "abc")
    assert record_store.get(scope.tenant_id, a.id).last_pushed_hash == "abc"


def test_records_are_found_by_external_id_and_a_push_result_is_recorded(record_store, scope):
    """A record created locally keeps its id when the provider names it (outbound push)."""
    local = make(scope, "castiel-pending:1")
    twin = make(scope, "r-42")  # what a pull stored meanwhile for the same remote record
    record_store.write(scope, [local, twin], [])
    assert set(record_store.find_by_external_ids(scope, ["r-42", "nope"])) == {"r-42"}

    remote = {"id": "r-42", "name": "as the provider holds it"}
    record_store.mark_pushed(
        scope.tenant_id,
        local.id,
        "hash-of-remote",
        remote=remote,
        local_hash=local.content_hash,
        external_id="r-42",
        remote_version="v7",
    )
    pushed = record_store.get(scope.tenant_id, local.id)
    assert (pushed.id, pushed.external_id, pushed.remote_version) == (local.id, "r-42", "v7")
    assert pushed.data == remote and pushed.base_data == remote
    assert pushed.last_pushed_hash == "hash-of-remote"
    assert record_store.get(scope.tenant_id, twin.id) is None, "the duplicate is gone"
    # ... and its history (the change feed) says so.
    [gone] = RecordChange.objects.filter(record_id=twin.id)
    assert (gone.action, gone.source, gone.external_id) == ("deleted", "push", "r-42")
    assert record_store.find_by_external_ids(scope, ["r-42"])["r-42"].id == local.id

    # A local edit made while the push was out keeps its data; only the base moves.
    edited = record_store.local_edit(
        scope.tenant_id, local.id, {"name": "mine"}, at=pushed.synced_at
    )
    record_store.mark_pushed(
        scope.tenant_id, local.id, "h2", remote={"name": "old"}, local_hash=local.content_hash
    )
    again = record_store.get(scope.tenant_id, local.id)
    assert again.data == edited.data == {"name": "mine"} and again.base_data == {"name": "old"}


def _push_group(record_store, scope) -> list[dict]:
    """A group of push results covering every case of ``mark_pushed``, on fresh records."""
    created = make(scope, "castiel-pending:1")
    twin = make(scope, "r-1")  # what a pull stored meanwhile for the created record
    raced = make(scope, "r-2")  # edited locally after the push read it
    kept = make(scope, "r-3")  # holds edits of a later change
    plain = make(scope, "r-4")  # only the pushed hash
    twice = make(scope, "r-5")  # two results of one record in one group
    first, second = make(scope, "castiel-pending:6"), make(scope, "castiel-pending:7")
    record_store.write(scope, [created, twin, raced, kept, plain, twice, first, second], [])
    record_store.local_edit(scope.tenant_id, raced.id, {"name": "mine"}, at=timezone.now())
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def push(record, pushed_hash, **fields):
        return {
            "tenant_id": scope.tenant_id,
            "record_id": record.id,
            "pushed_hash": pushed_hash,
            **fields,
        }

    return [
        push(
            created,
            "h1",
            remote={"id": "r-1", "n": 1},
            local_hash=created.content_hash,
            external_id="r-1",
            remote_version="v1",
            remote_updated_at=at,
        ),
        push(raced, "h2", remote={"id": "r-2", "n": 2}, local_hash=raced.content_hash),
        push(
            kept, "h3", remote={"id": "r-3", "n": 3}, local_hash=kept.content_hash, keep_local=True
        ),
        push(plain, "h4"),
        push(twice, "h5", remote={"id": "r-5", "n": 5}),
        push(twice, "h5b", remote={"id": "r-5", "n": 55}, remote_version="v5b"),
        # The provider answered two creates with one id: the second finds the first as its
        # twin, as it would one push at a time.
        push(first, "h6", remote={"id": "r-6"}, external_id="r-6"),
        push(second, "h7", remote={"id": "r-6", "again": True}, external_id="r-6"),
        push(make(scope, "never-stored"), "h8", remote={"id": "x"}),
    ]


def _state(record_store, scope) -> list[tuple]:
    return sorted(
        (
            r.external_id,
            r.data,
            r.base_data,
            r.content_hash,
            r.last_pushed_hash,
            r.remote_version,
            r.remote_updated_at,
            r.version,
        )
        for r in record_store.iter_scope(scope)
    )


def test_a_group_of_push_results_is_recorded_as_one_at_a_time(record_store, scope, tenant):
    """``mark_pushed_many`` (two statements on PostgreSQL) leaves every record, its history
    and its answer exactly as ``mark_pushed`` one result after another does."""
    one_by_one = Scope(tenant.id, IntegrationFactory(tenant=tenant).id, "contacts")
    expected = [
        record_store._mark_pushed_retrying(push) for push in _push_group(record_store, one_by_one)
    ]
    took = record_store.mark_pushed_many(_push_group(record_store, scope))

    assert took == expected == [True, False, False, False, True, True, True, True, False]
    assert _state(record_store, scope) == _state(record_store, one_by_one)
    removed = RecordChange.objects.filter(integration_id=scope.integration_id, source="push")
    assert sorted(removed.values_list("external_id", flat=True)) == ["r-1", "r-6"]


def test_a_write_round_trips_every_field(record_store, scope):
    """On PostgreSQL the ORM store writes through COPY: text that COPY escapes must survive."""
    now = timezone.now().replace(microsecond=123456)
    awkward = 'tab\there, newline\nthere, quote " back \\ slash, \\N, é ✓ 𝄞'
    first = make(scope, "a", keys=["email:é@x.com"], name="Ada", note=awkward, n=None)
    elsewhere = timezone.get_fixed_timezone(120)  # a provider's own offset
    first = first.copy(
        remote_updated_at=(now - timedelta(days=1)).astimezone(elsewhere),
        remote_version='"etag-1"',
        last_pushed_hash="abc",
        seen_generation=7,
        data_json=canonical_json(first.data),  # as the pipeline hands it over
    )
    record_store.write(scope, [first], [])
    stored = record_store.get(scope.tenant_id, first.id)
    assert stored.data == first.data and stored.data["note"] == awkward
    assert stored.base_data == first.base_data and stored.match_keys == ["email:é@x.com"]
    assert (stored.remote_updated_at, stored.remote_version) == (
        now - timedelta(days=1),
        '"etag-1"',
    )
    assert (stored.synced_at, stored.created_at) == (first.synced_at, first.created_at)
    assert (stored.last_pushed_hash, stored.seen_generation) == ("abc", 7)
    assert stored.local_updated_at is None and stored.deleted_at is None

    data = {"id": "a", "name": "Ada L."}
    second = stored.copy(
        data=data,
        content_hash=content_hash(data),
        local_updated_at=now,
        deleted_at=now,
        match_keys=[],
        created_at=now + timedelta(hours=1),
    )
    record_store.write(scope, [], [second])
    again = record_store.get(scope.tenant_id, first.id)
    assert again.data == data and again.content_hash == content_hash(data)
    assert (again.local_updated_at, again.deleted_at) == (now, now)
    assert again.match_keys == [] and again.base_data == first.base_data
    if record_store.name == "orm":
        # The ORM upsert never rewrites when a record was made; Cosmos DB replaces whole
        # documents, and the pipeline always passes the stored created_at along.
        assert again.created_at == stored.created_at
