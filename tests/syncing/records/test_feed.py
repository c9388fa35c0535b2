"""The change feed (GET /api/v1/records/changes/): every write path's changes, in order, with
the record or its tombstone; cursors bound to tenant and filters; retention answers 410.

These tests commit (``transaction=True``): on PostgreSQL the feed serves only changes whose
transaction has ended, and a test's own open transaction would hold them back.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from syncing.models import ChangeFeedPruned, OutboundChange, RecordChange
from syncing.outbound import local_changes
from syncing.records import feed, history
from tests.conftest import client_for
from tests.syncing.pipeline_support import apply_page, stored, task_with
from tests.syncing.records.feed_support import settle

URL = "/api/v1/records/changes/"
pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def follow(api, cursor=None, **params):
    """Every change after ``cursor`` (pages of ``limit``): (changes, last cursor)."""
    settle()
    changes = []
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(URL, query)
        assert response.status_code == 200, response.json()
        body = response.json()
        changes += body["results"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return changes, cursor
    raise AssertionError("the feed never reached its head")


def test_every_kind_of_change_in_order_with_the_record_or_its_tombstone(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Bob"}])
    one, two = stored(task)["1"], stored(task)["2"]
    local_changes.record_update(
        tenant_id=tenant.id, record_id=one.id, data={"name": "Ada L."}, origin="api"
    )
    local_changes.record_delete(tenant_id=tenant.id, record_id=two.id, origin="api")
    apply_page(task, [{"id": "2", "name": "Bob"}])  # comes back (a pull restores it)
    made = local_changes.record_create(
        integration=task.integration, entity_type="contacts", data={"name": "Cy"}
    )

    changes, _cursor = follow(api, limit=2)
    seen = [(c["record_id"], c["action"], c["fields"], c["version"]) for c in changes]
    assert seen == [
        (str(one.id), "created", [], 1),
        (str(two.id), "created", [], 1),
        (str(one.id), "updated", ["name"], 2),
        (str(two.id), "deleted", [], 2),
        (str(two.id), "restored", [], 3),
        (str(made.record.id), "created", [], 1),
    ]
    first = changes[0]
    # The record as it is now (a later change follows), with the records endpoint's fields.
    assert first["record"]["data"] == {"id": "1", "name": "Ada L."}
    assert first["record"]["version"] == 2 and first["record"]["deleted_at"] is None
    assert (first["integration"], first["entity_type"], first["external_id"]) == (
        str(task.integration_id),
        "contacts",
        "1",
    )
    assert changes[2]["source"] == "api" and changes[0]["source"] == "service"


def test_a_pages_new_records_enter_the_feed_in_page_order_with_their_source(tenant, api):
    """On PostgreSQL the database copies a page's "created" rows from the records it just
    inserted: each record once, in the page's order, with the page's source and a version."""
    task = task_with(tenant)
    page = [str(n) for n in range(30, 0, -1)]
    apply_page(task, [{"id": n, "name": f"Person {n}"} for n in page])
    apply_page(task, [{"id": "31"}, {"id": "30", "name": "Person 30, renamed"}])

    changes, _cursor = follow(api)
    assert [(c["external_id"], c["action"]) for c in changes] == [
        *[(n, "created") for n in page],
        ("31", "created"),
        ("30", "updated"),
    ]
    rows = RecordChange.objects.filter(integration_id=task.integration_id).order_by("id")
    assert {(r.source, r.actor, tuple(r.fields), r.version) for r in rows[:30]} == {
        ("service", "", (), 1)
    }
    assert stored(task)["30"].id == rows[0].record_id


def test_a_deleted_record_shows_its_tombstone(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}])
    record = stored(task)["1"]
    local_changes.record_delete(tenant_id=tenant.id, record_id=record.id, origin="api")
    changes, _ = follow(api)
    tombstone = changes[-1]["record"]
    assert set(tombstone) == {"id", "integration", "entity_type", "external_id", "deleted_at"}
    assert tombstone["id"] == str(record.id) and tombstone["deleted_at"]
    assert changes[0]["record"] == tombstone, "every change shows the record as it is now"


def test_a_follower_gets_each_change_once_and_its_cursor_stays_at_the_head(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": str(i), "n": i} for i in range(7)])
    changes, cursor = follow(api, limit=3)
    assert len(changes) == 7
    again, cursor2 = follow(api, cursor, limit=3)
    assert again == []
    apply_page(task, [{"id": "0", "n": 100}, {"id": "7", "n": 7}])
    later, _ = follow(api, cursor2, limit=3)
    assert sorted((c["external_id"], c["action"]) for c in later) == [
        ("0", "updated"),
        ("7", "created"),
    ]


def test_from_now_returns_the_head_and_only_later_changes_follow(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": "1"}, {"id": "2"}])
    settle()
    body = api.get(URL, {"from": "now"}).json()
    assert body["results"] == [] and body["has_more"] is False
    apply_page(task, [{"id": "3"}])
    changes, _ = follow(api, body["next_cursor"])
    assert [c["external_id"] for c in changes] == ["3"]


def test_filters_by_integration_and_entity_type(tenant, api, monkeypatch):
    contacts, companies = task_with(tenant), task_with(tenant, entity_type="companies")
    apply_page(contacts, [{"id": "c1"}, {"id": "c2"}])
    apply_page(companies, [{"id": "k1"}])
    apply_page(contacts, [{"id": "c3"}])
    only = {"integration": str(contacts.integration_id)}
    assert [c["external_id"] for c in follow(api, **only)[0]] == ["c1", "c2", "c3"]
    assert [c["external_id"] for c in follow(api, entity_type="companies")[0]] == ["k1"]
    # A filtered read examines a bounded number of changes per answer: with a scan limit of
    # one, each answer looks at one change, and the follower still gets each match once.
    monkeypatch.setattr(feed, "SCAN_LIMIT", 1)
    assert [c["external_id"] for c in follow(api, entity_type="companies", limit=1)[0]] == ["k1"]
    assert [c["external_id"] for c in follow(api, **only, limit=1)[0]] == ["c1", "c2", "c3"]


def test_cursors_are_bound_to_the_tenant_and_the_filters(tenant, other_tenant, api):
    apply_page(task_with(tenant), [{"id": "1"}])
    apply_page(task_with(other_tenant), [{"id": "x"}])
    theirs = client_for(other_tenant)
    their_cursor = theirs.get(URL, {"limit": 1}).json()["next_cursor"]
    mine = api.get(URL, {"cursor": their_cursor})
    assert mine.status_code == 400 and "cursor" in mine.json()["details"]
    assert [c["external_id"] for c in follow(api)[0]] == ["1"], "never another tenant's changes"

    cursor = api.get(URL, {"limit": 1}).json()["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert api.get(URL, {"cursor": tampered}).status_code == 400
    assert api.get(URL, {"cursor": "garbage"}).status_code == 400
    other_filter = api.get(URL, {"cursor": cursor, "entity_type": "companies"})
    assert other_filter.status_code == 400
    assert "other filters" in str(other_filter.json()["details"]["cursor"])


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"integration": "nope"}, {"from": "then"}],
)
def test_bad_parameters_are_400(api, query):
    response = api.get(URL, query)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_from_now_and_a_cursor_together_are_400(api):
    cursor = api.get(URL, {"from": "now"}).json()["next_cursor"]
    assert api.get(URL, {"from": "now", "cursor": cursor}).status_code == 400


def test_a_cursor_older_than_the_retention_is_410_and_says_how_to_resynchronise(
    tenant, api, settings
):
    task = task_with(tenant)
    apply_page(task, [{"id": "1"}, {"id": "2"}, {"id": "3"}])
    old = api.get(URL, {"limit": 1}).json()["next_cursor"]
    RecordChange.objects.update(at=timezone.now() - timedelta(days=100))
    apply_page(task, [{"id": "4"}])
    fresh = follow(api)[1]
    assert history.prune(batch=2) == 3
    assert ChangeFeedPruned.objects.get().change_id > 0

    response = api.get(URL, {"cursor": old})
    assert response.status_code == 410
    body = response.json()
    assert body["code"] == "cursor_expired"
    assert body["details"]["resync"] == "/api/v1/records/changes/?from=now"
    assert "from=now" in body["message"] and "/api/v1/records/" in body["message"]
    # A reader that kept up is unaffected: its cursor moved with the head.
    assert api.get(URL, {"cursor": fresh}).status_code == 200
    # Without a cursor the feed starts at the oldest change kept.
    assert [c["external_id"] for c in follow(api)[0]] == ["4"]


def test_a_prune_during_the_read_is_410_not_a_silent_gap(tenant, api, monkeypatch):
    task = task_with(tenant)
    apply_page(task, [{"id": "1"}, {"id": "2"}])
    cursor = api.get(URL, {"limit": 1}).json()["next_cursor"]
    RecordChange.objects.update(at=timezone.now() - timedelta(days=100))
    read = feed._changes

    def pruned_meanwhile(*args, **kwargs):
        history.prune()  # between the cursor's check and the rows: nothing left to serve
        return read(*args, **kwargs)

    monkeypatch.setattr(feed, "_changes", pruned_meanwhile)
    assert api.get(URL, {"cursor": cursor}).status_code == 410


def test_the_lag_metrics(tenant):
    apply_page(task_with(tenant), [{"id": "1"}])
    metrics = {m.name: m for m in feed.lag_metrics()}
    age = metrics["castiel_change_feed_newest_change_age_seconds"].samples[0].value
    assert 0 <= age < 60
    assert metrics["castiel_change_feed_horizon_lag_seconds"].samples[0].value >= 0


def test_changes_an_admin_makes_are_in_the_feed(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}])
    record = stored(task)["1"]
    local_changes.record_update(
        tenant_id=tenant.id,
        record_id=record.id,
        data={"name": "Ada L."},
        origin=OutboundChange.Origin.ADMIN,
        actor="admin:ops",
    )
    changes, _ = follow(api)
    assert (changes[-1]["action"], changes[-1]["source"]) == ("updated", "admin")


def test_a_cursor_for_exactly_one_runs_changes(tenant, api, sandbox, enqueued):
    """What a sync.completed event will carry: from=run gives the cursor from which the feed
    returns that run's changes and nothing else (not the API edit made meanwhile)."""
    from sandbox import services as sandbox_services
    from sandbox.models import SandboxObject
    from tests.syncing.helpers import make_task, run_once, sandbox_integration

    account = sandbox.account()
    sandbox.seed(account, 4)
    task = make_task(sandbox_integration(tenant, sandbox.url, account.slug))
    first = run_once(task, enqueued)
    local_changes.record_update(
        tenant_id=tenant.id, record_id=next(iter(stored(task).values())).id, data={"x": 1}
    )
    objs = list(SandboxObject.objects.filter(account=account).order_by("id"))
    sandbox_services.object_update(obj=objs[0], data={"email": "new@example.com"})
    second = run_once(task, enqueued)
    assert (first.created, second.updated) == (4, 1)

    for run, expected in ((first, 4), (second, 1)):
        settle()
        body = api.get(URL, {"from": "run", "run": str(run.pk)}).json()
        changes, _ = follow(api, body["next_cursor"], run=str(run.pk))
        assert len(changes) == expected
        assert {(c["source"], c["source_id"]) for c in changes} == {("run", str(run.pk))}
    assert api.get(URL, {"from": "run"}).status_code == 400


def test_records_deleted_with_their_integration_leave_through_the_feed(tenant, api):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Bob"}])
    one, two = stored(task)["1"], stored(task)["2"]
    local_changes.record_delete(tenant_id=tenant.id, record_id=two.id, origin="api")
    kept = task_with(tenant)
    apply_page(kept, [{"id": "9", "name": "Cy"}])
    _changes, cursor = follow(api)

    task.integration.delete()  # the records go by cascade: no write path runs

    changes, _cursor = follow(api, cursor)
    # The live record leaves as a deletion (its tombstone); the one already deleted is not
    # reported twice; the other integration's record is untouched.
    assert [(c["record_id"], c["action"], c["version"]) for c in changes] == [
        (str(one.id), "deleted", 2)
    ]
    tombstone = changes[0]["record"]
    assert tombstone["id"] == str(one.id) and tombstone["external_id"] == "1"
    assert tombstone["deleted_at"] is not None
    assert changes[0]["source_id"] == f"integration-deleted:{task.integration_id}"


def test_a_deletion_that_rolls_back_reports_nothing(tenant, api):
    from django.db import transaction

    task = task_with(tenant)
    apply_page(task, [{"id": "1", "name": "Ada"}])
    _changes, cursor = follow(api)
    with pytest.raises(RuntimeError), transaction.atomic():
        task.integration.delete()
        raise RuntimeError("the deletion fails after the cascade")
    assert follow(api, cursor)[0] == []
    assert stored(task)["1"].deleted_at is None
