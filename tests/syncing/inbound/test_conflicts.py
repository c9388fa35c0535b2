"""Table-driven conflict resolution, then the same strategies through the page pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from syncing.inbound.conflicts import ConflictConfigError, resolve, validate_config
from syncing.models import Conflict
from syncing.records.hashing import content_hash
from syncing.records.stores import get_store
from syncing.services import ConflictError, conflict_resolve
from tests.syncing.pipeline_support import apply_page, stored, task_with

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BASE = {"name": "Ada", "email": "ada@x.com", "phone": "1"}
LOCAL = {"name": "Ada L.", "email": "ada@x.com", "phone": "2"}  # name and phone edited
REMOTE = {"name": "Ada Lovelace", "email": "ada@y.com", "phone": "1"}  # name and email edited
# Only `name` conflicts: the winner's name, and each side's own edit of the other fields.
REMOTE_WON = {"name": "Ada Lovelace", "email": "ada@y.com", "phone": "2"}
LOCAL_WON = {"name": "Ada L.", "email": "ada@y.com", "phone": "2"}


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


CASES = [
    # (name, strategy, config, local time, remote time, expected data, winner)
    ("remote wins", "remote_wins", {}, at(0), at(-60), REMOTE_WON, "remote"),
    ("local wins", "local_wins", {}, at(-60), at(0), LOCAL_WON, "local"),
    ("LWW: remote later", "last_write_wins", {}, at(0), at(60), REMOTE_WON, "remote"),
    ("LWW: local later", "last_write_wins", {}, at(60), at(0), LOCAL_WON, "local"),
    (
        "LWW: within clock skew is a tie → configured side (local)",
        "last_write_wins",
        {"skew_seconds": 5, "tie": "local"},
        at(0),
        at(4),
        LOCAL_WON,
        "local",
    ),
    (
        "LWW: within clock skew, default tie → remote",
        "last_write_wins",
        {"skew_seconds": 5},
        at(3),
        at(0),
        REMOTE_WON,
        "remote",
    ),
    (
        "LWW: just past the skew tolerance the later side wins",
        "last_write_wins",
        {"skew_seconds": 5, "tie": "remote"},
        at(6),
        at(0),
        LOCAL_WON,
        "local",
    ),
    (
        "LWW: a missing timestamp is a tie",
        "last_write_wins",
        {"tie": "local"},
        None,
        at(0),
        LOCAL_WON,
        "local",
    ),
    (
        "field merge: each side keeps its own edits; both-changed field → default remote",
        "field_merge",
        {},
        at(0),
        at(0),
        {"name": "Ada Lovelace", "email": "ada@y.com", "phone": "2"},
        "merged",
    ),
    (
        "field merge: per-field source of truth",
        "field_merge",
        {"fields": {"name": "local"}},
        at(0),
        at(0),
        {"name": "Ada L.", "email": "ada@y.com", "phone": "2"},
        "merged",
    ),
    (
        "field merge: a field changed on both sides can go to manual review",
        "field_merge",
        {"default": "manual"},
        at(0),
        at(0),
        None,
        "manual",
    ),
    ("manual", "manual", {}, at(0), at(0), None, "manual"),
]


@pytest.mark.parametrize(
    "strategy,config,local_at,remote_at,expected,winner",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_resolution(strategy, config, local_at, remote_at, expected, winner):
    result = resolve(
        strategy,
        base=BASE,
        local=LOCAL,
        remote=REMOTE,
        local_updated_at=local_at,
        remote_updated_at=remote_at,
        config=config,
    )
    assert (result.data, result.winner) == (expected, winner)
    assert result.fields == ["name"], "only `name` changed on both sides, differently"


def test_field_merge_handles_added_and_removed_fields():
    result = resolve(
        "field_merge",
        base={"a": 1, "b": 2},
        local={"a": 1, "b": 2, "c": 3},  # added c
        remote={"a": 1},  # removed b
        local_updated_at=None,
        remote_updated_at=None,
    )
    assert result.data == {"a": 1, "c": 3}


@pytest.mark.parametrize(
    "strategy,config",
    [
        ("last_write_wins", {"skew_seconds": -1}),
        ("last_write_wins", {"tie": "both"}),
        ("field_merge", {"default": "coin"}),
        ("field_merge", {"fields": {"x": "maybe"}}),
        ("nope", {}),
    ],
)
def test_invalid_configs_are_refused(strategy, config):
    with pytest.raises(ConflictConfigError):
        validate_config(strategy, config)


# -- through the pipeline -----------------------------------------------------------------------


def _edit_locally(task, external_id, data, when=None):
    record = stored(task)[external_id]
    get_store().local_edit(task.tenant_id, record.id, data, at=when or timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "strategy", ["remote_wins", "local_wins", "last_write_wins", "field_merge", "manual"]
)
def test_edits_to_different_fields_merge_cleanly_whatever_the_strategy(strategy):
    local = {**BASE, "phone": "2"}  # only the phone edited here
    remote = {**BASE, "email": "ada@y.com"}  # only the e-mail edited there
    result = resolve(
        strategy,
        base=BASE,
        local=local,
        remote=remote,
        local_updated_at=at(60),
        remote_updated_at=at(0),
    )
    assert (result.data, result.winner, result.fields) == (
        {"name": "Ada", "email": "ada@y.com", "phone": "2"},
        "merged",
        [],
    )


class TestPipeline:
    def setup_task(self, tenant, strategy, config=None):
        task = task_with(tenant, conflict_strategy=strategy, conflict_config=config or {})
        apply_page(task, [{"id": "1", **BASE, "updated_at": "2024-05-01T11:00:00Z"}])
        return task

    def test_no_conflict_when_only_the_remote_changed(self, tenant):
        task = self.setup_task(tenant, "manual")
        result = apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
        assert (result.counts["updated"], result.counts["conflicts"]) == (1, 0)

    def test_a_local_edit_alone_is_kept(self, tenant):
        task = self.setup_task(tenant, "remote_wins")
        _edit_locally(task, "1", {"id": "1", **LOCAL, "updated_at": "2024-05-01T11:00:00Z"})
        result = apply_page(task, [{"id": "1", **BASE, "updated_at": "2024-05-01T11:00:00Z"}])
        assert result.counts["unchanged"] == 1
        assert stored(task)["1"].data["name"] == "Ada L."

    def test_field_merge_on_a_real_record(self, tenant):
        task = self.setup_task(tenant, "field_merge")
        _edit_locally(task, "1", {"id": "1", **LOCAL, "updated_at": "2024-05-01T11:00:00Z"})
        result = apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
        assert result.counts["conflicts"] == 1
        record = stored(task)["1"]
        assert record.data == {
            "id": "1",
            "name": "Ada Lovelace",
            "email": "ada@y.com",
            "phone": "2",
            "updated_at": "2024-05-01T12:00:00Z",
        }
        assert record.base_data["name"] == "Ada Lovelace", "the remote becomes the new base"
        again = apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
        assert again.counts["conflicts"] == 0, "the same remote version is not a new conflict"

    def test_last_write_wins_uses_the_local_edit_time(self, tenant):
        task = self.setup_task(tenant, "last_write_wins", {"skew_seconds": 5})
        _edit_locally(task, "1", {"id": "1", **LOCAL}, when=datetime(2024, 5, 1, 13, tzinfo=UTC))
        apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
        assert stored(task)["1"].data["name"] == "Ada L."

    def test_manual_opens_one_conflict_and_leaves_the_record_untouched(self, tenant):
        task = self.setup_task(tenant, "manual")
        _edit_locally(task, "1", {"id": "1", **LOCAL})
        before = stored(task)["1"]
        result = apply_page(task, [{"id": "1", **REMOTE, "updated_at": "2024-05-01T12:00:00Z"}])
        assert result.counts["conflicts"] == 1
        newer = {"id": "1", **REMOTE, "name": "Countess", "updated_at": "2024-05-01T13:00:00Z"}
        apply_page(task, [newer])
        after = stored(task)["1"]
        assert (after.data, after.version) == (before.data, before.version)
        conflict = Conflict.objects.get()
        assert conflict.status == "open" and conflict.remote_data == newer
        assert conflict.local_data == before.data

        conflict_resolve(conflict=conflict, resolution="remote", by="test")
        resolved = stored(task)["1"]
        assert resolved.data == newer and not resolved.locally_modified
        with pytest.raises(ConflictError):
            conflict_resolve(conflict=conflict, resolution="local")
        result = apply_page(task, [newer])
        assert result.counts["unchanged"] == 1 and Conflict.objects.count() == 1

    def test_our_own_pushed_write_is_an_echo_not_a_conflict(self, tenant):
        task = self.setup_task(tenant, "manual")
        pushed = {"id": "1", **LOCAL, "updated_at": "2024-05-01T11:00:00Z"}
        _edit_locally(task, "1", pushed)
        record = stored(task)["1"]
        get_store().mark_pushed(task.tenant_id, record.id, content_hash(pushed))
        result = apply_page(task, [pushed])
        assert (result.counts["echoes"], result.counts["conflicts"], result.counts["updated"]) == (
            1,
            0,
            0,
        )
        after = stored(task)["1"]
        assert after.data == pushed and not after.locally_modified
        assert not Conflict.objects.exists()

    def test_our_push_seen_before_its_answer_is_a_clean_merge_not_a_conflict(self, tenant):
        """The provider's webhook for our own push can be processed before the push result
        is recorded (no echo marker yet): the remote holds our edit plus its own timestamp
        — nothing changed on both sides differently, so no conflict is opened."""
        task = self.setup_task(tenant, "manual")
        _edit_locally(
            task, "1", {"id": "1", **BASE, "phone": "2", "updated_at": "2024-05-01T11:00:00Z"}
        )
        theirs = {"id": "1", **BASE, "phone": "2", "updated_at": "2024-05-01T12:00:00Z"}
        result = apply_page(task, [theirs])
        assert (result.counts["conflicts"], result.counts["updated"]) == (0, 1)
        assert not Conflict.objects.exists()
        after = stored(task)["1"]
        assert after.data == theirs and after.base_data == theirs and not after.locally_modified

    def test_tombstones_soft_delete(self, tenant):
        task = self.setup_task(tenant, "remote_wins")
        result = apply_page(task, [{"id": "1", "deleted": True}])
        assert result.counts["deleted"] == 1
        assert stored(task) == {} and "1" in stored(task, include_deleted=True)
