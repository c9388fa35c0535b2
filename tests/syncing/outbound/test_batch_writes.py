"""The batch write service (``syncing.outbound.batch_changes``): per-item outcomes with the
single writes' codes, atomic vs per-item commit, the outbox rows it leaves (coalescing and
cancellation like single writes) pushed afterwards to a real local HTTP server, the change
feed seeing every change once, and a statement count that does not grow with the batch."""

from __future__ import annotations

import uuid

import pytest

from syncing.models import OutboundChange, Record, RecordChange
from syncing.outbound import batch_changes, local_changes
from syncing.outbound.batch_changes import BatchItem
from syncing.records import feed
from syncing.records.stores import get_store
from tests.factories import IntegrationFactory
from tests.syncing.factories import make_record
from tests.syncing.outbound_support import changes_of, push_all
from tests.syncing.records.feed_support import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]


@pytest.fixture
def provider(http_server):
    """Accepts every write; remembers each request (method, path, body)."""
    seen = []
    counter = {"n": 0}

    @http_server.route("POST", "/contacts")
    def create(request):
        counter["n"] += 1
        seen.append(("POST", "/contacts", request.json()))
        return 201, {}, {**request.json(), "id": f"r{counter['n']}"}

    http_server.seen = seen
    return http_server


def accept_item_writes(server, external_id):
    def handler(request):
        server.seen.append((request.method, f"/contacts/{external_id}", None))
        if request.method == "DELETE":
            return 204, {}, b""
        return 200, {}, {**request.json(), "id": external_id}

    for method in ("PATCH", "DELETE"):
        server.routes[(method, f"/contacts/{external_id}")] = handler


def pushed_records(tenant, server, pushes, n):
    """``n`` records created and pushed (so they have provider ids and no open change)."""
    integration = IntegrationFactory(tenant=tenant, config={"base_url": server.url})
    made = [
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"name": f"N{i}"}
        ).record
        for i in range(n)
    ]
    assert push_all(pushes) == {"succeeded": n}
    records = [get_store().get(tenant.id, r.id) for r in made]
    for record in records:
        accept_item_writes(server, record.external_id)
    server.seen.clear()
    return integration, records


def write(tenant, items, **kwargs):
    return batch_changes.records_write_batch(
        tenant_id=tenant.id, items=items, origin="api", actor="api:test", **kwargs
    )


def test_each_item_gets_the_outcome_and_code_of_a_single_write(tenant, provider, pushes):
    integration, (a, b, c, d) = pushed_records(tenant, provider, pushes, 4)
    local_changes.record_delete(tenant_id=tenant.id, record_id=d.id)
    unknown = uuid.uuid4()  # a well-formed id no record has
    result = write(
        tenant,
        [
            BatchItem("create", integration=integration, entity_type="contacts", data={"n": 1}),
            BatchItem("update", record_id=a.id, data={"phone": "1"}, expected_version=a.version),
            BatchItem("update", record_id=b.id, data={"phone": "2"}, expected_version=1),
            BatchItem("update", record_id=unknown, data={"phone": "3"}),
            BatchItem("delete", record_id=c.id),
            BatchItem("update", record_id=d.id, data={"phone": "4"}),
            BatchItem("update", record_id=a.id, data={"phone": "5"}),  # a second time
        ],
    )
    outcome = [(r.status, r.error.code if r.error else None) for r in result.results]
    assert outcome == [
        (201, None),
        (200, None),
        (409, "version_mismatch"),
        (404, "not_found"),
        (200, None),
        (409, "record_deleted"),
        (400, "duplicate_record"),
    ]
    assert result.applied and result.failed == 4
    store = get_store()
    assert store.get(tenant.id, a.id).data["phone"] == "1"
    assert store.get(tenant.id, a.id).version == a.version + 1
    assert "phone" not in store.get(tenant.id, b.id).data  # its item failed: untouched
    assert store.get(tenant.id, c.id).deleted_at is not None
    created = result.results[0].record
    assert store.get(tenant.id, created.id).data == {"n": 1}
    ops = {
        (str(ch.record_id), ch.operation, tuple(ch.fields))
        for ch in OutboundChange.objects.filter(status="pending", origin="api")
    }
    assert ops == {
        (str(created.id), "create", ("n",)),
        (str(a.id), "update", ("phone",)),
        (str(c.id), "delete", ()),
    }

    # Pushed afterwards exactly like single writes: one request per change, all succeed.
    assert push_all(pushes) == {"succeeded": 4}  # and d's single delete
    methods = sorted((m, p) for m, p, _body in provider.seen)
    assert methods == sorted(
        [
            ("POST", "/contacts"),
            ("PATCH", f"/contacts/{a.external_id}"),
            ("DELETE", f"/contacts/{c.external_id}"),
            ("DELETE", f"/contacts/{d.external_id}"),
        ]
    )
    assert store.get(tenant.id, created.id).external_id.startswith("r")


def test_an_atomic_batch_writes_nothing_when_one_item_fails(tenant, provider, pushes):
    _integration, (a, b) = pushed_records(tenant, provider, pushes, 2)
    history_before, wakeups = RecordChange.objects.count(), pushes.wakeups
    items = [
        BatchItem("update", record_id=a.id, data={"name": "A2"}),
        BatchItem("delete", record_id=b.id, expected_version=b.version + 7),
    ]
    result = write(tenant, items, atomic=True)
    assert not result.applied
    assert [(r.status, r.error.code) for r in result.results] == [
        (424, "not_applied"),
        (409, "version_mismatch"),
    ]
    assert get_store().get(tenant.id, a.id).data["name"] == "N0"
    assert get_store().get(tenant.id, b.id).deleted_at is None
    assert not OutboundChange.objects.filter(status="pending").exists()
    assert RecordChange.objects.count() == history_before
    assert pushes.wakeups == wakeups  # nothing to push: nobody woken

    # Per item, the same batch writes what passes.
    result = write(tenant, items)
    assert [r.ok for r in result.results] == [True, False]
    assert get_store().get(tenant.id, a.id).data["name"] == "A2"
    assert pushes.wakeups == wakeups + 1


def test_outbox_rows_coalesce_and_cancel_like_single_writes(tenant, provider, pushes):
    integration, (a, b) = pushed_records(tenant, provider, pushes, 2)
    local_changes.record_update(tenant_id=tenant.id, record_id=a.id, data={"x": "1"})
    local_changes.record_update(tenant_id=tenant.id, record_id=b.id, data={"x": "1"})
    fresh = local_changes.record_create(
        integration=integration, entity_type="contacts", data={"name": "new"}
    ).record
    result = write(
        tenant,
        [
            BatchItem("update", record_id=a.id, data={"y": "2"}),  # merges into the pending one
            BatchItem("delete", record_id=b.id),  # supersedes the pending update
            BatchItem("delete", record_id=fresh.id),  # cancels a create never sent
        ],
    )
    assert all(r.ok for r in result.results)
    (a_change,) = changes_of(a.id)[-1:]
    assert (a_change.operation, a_change.fields, a_change.coalesced) == ("update", ["x", "y"], 1)
    assert result.results[0].change.pk == a_change.pk
    assert [(c.operation, c.status) for c in changes_of(b.id)[-2:]] == [
        ("update", "superseded"),
        ("delete", "pending"),
    ]
    assert [(c.operation, c.status) for c in changes_of(fresh.id)] == [("create", "superseded")]
    assert result.results[2].change is None

    assert push_all(pushes) == {"succeeded": 2}  # a's merged update, b's delete; no create
    assert sorted(m for m, _p, _b in provider.seen) == ["DELETE", "PATCH"]


def test_the_change_feed_sees_every_change_of_a_batch_exactly_once(tenant, provider, pushes):
    integration, records = pushed_records(tenant, provider, pushes, 6)
    settle()
    position = feed.horizon()
    result = write(
        tenant,
        [
            BatchItem("update", record_id=r.id, data={"name": f"x{i}"})
            for i, r in enumerate(records[:4])
        ]
        + [BatchItem("delete", record_id=records[4].id)]
        + [BatchItem("create", integration=integration, entity_type="contacts", data={"k": 1})],
    )
    assert result.failed == 0
    settle()
    seen = []
    after = position
    for _ in range(20):
        page = feed.read(tenant.id, after=after, filters=feed.Filters(), limit=2)
        seen += [
            (c.record_id, c.action, tuple(c.fields), c.version, c.source) for c in page.changes
        ]
        after = page.next
        if not page.has_more:
            break
    expected = [(r.id, "updated", ("name",), r.version + 1, "api") for r in records[:4]]
    expected += [(records[4].id, "deleted", (), records[4].version + 1, "api")]
    expected += [(result.results[5].record.id, "created", (), 1, "api")]
    assert sorted(seen, key=str) == sorted(expected, key=str)
    assert len(seen) == len(set(seen))
    # Nothing more after the head.
    assert feed.read(tenant.id, after=after, filters=feed.Filters(), limit=10).changes == []
    change_ids = {str(c.pk) for c in OutboundChange.objects.filter(status="pending")}
    assert set(RecordChange.objects.filter(source="api").values_list("source_id", flat=True)) == (
        change_ids
    )


def _mixed_batch(tenant, integration, n):
    """n/2 updates, n/4 deletes (of records whose create is still pending) and n/4 creates."""
    rows = [
        local_changes.record_create(
            integration=integration, entity_type="contacts", data={"name": f"N{i}"}
        ).record
        for i in range(n * 3 // 4)
    ]
    half = n // 2
    return (
        [BatchItem("update", record_id=r.id, data={"name": "M"}) for r in rows[:half]]
        + [BatchItem("delete", record_id=r.id) for r in rows[half:]]
        + [
            BatchItem("create", integration=integration, entity_type="contacts", data={"i": i})
            for i in range(n - len(rows))
        ]
    )


@pytest.mark.parametrize("size", [8, 800])
def test_the_statement_count_does_not_grow_with_the_batch(
    tenant, pushes, size, django_assert_max_num_queries
):
    integration = IntegrationFactory(tenant=tenant)
    items = _mixed_batch(tenant, integration, size)
    # (On PostgreSQL the outbox rows, record upsert and history go through COPY, one
    # statement each, which Django does not count: the bound there is tighter still.)
    with django_assert_max_num_queries(14):
        result = write(tenant, items)
    assert result.failed == 0 and len(result.results) == size
    assert OutboundChange.objects.filter(coalesced=1).count() == size // 2  # merged updates
    assert OutboundChange.objects.filter(status="superseded").count() == size * 3 // 4 - size // 2
    assert RecordChange.objects.filter(source="api").count() == size


def test_the_admins_bulk_delete_is_a_batch_write_per_tenant(client, tenant, other_tenant, pushes):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    assert client.login(username="ops", password="correct horse battery")
    mine = [make_record(tenant) for _ in range(3)]
    theirs = [make_record(other_tenant) for _ in range(2)]
    local_changes.record_delete(tenant_id=tenant.id, record_id=mine[0].pk)  # already deleted
    selected = [str(r.pk) for r in mine + theirs]
    response = client.post(
        "/admin/syncing/record/",
        {"action": "delete_locally", "_selected_action": selected},
        follow=True,
    )
    assert response.status_code == 200
    assert "4 records deleted here" in response.content.decode()
    assert Record.objects.filter(deleted_at__isnull=True).count() == 0
    deletes = OutboundChange.objects.filter(operation="delete", origin="admin")
    assert sorted(str(c.record_id) for c in deletes) == sorted(selected[1:])
    assert set(deletes.values_list("actor", flat=True)) == {"admin:ops"}
    assert RecordChange.objects.filter(action="deleted", source="admin").count() == 4
    # One batch per tenant: its history rows were written together (one time each).
    for owner in (tenant, other_tenant):
        rows = RecordChange.objects.filter(tenant=owner, action="deleted", source="admin")
        assert rows.values("at").distinct().count() == 1
