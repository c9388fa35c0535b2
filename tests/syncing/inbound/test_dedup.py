"""Table-driven deduplication: every strategy, the rule that matched, and the failure modes."""

from __future__ import annotations

import pytest

from syncing.inbound.dedup import DedupConfigError, strategy_for
from tests.syncing.pipeline_support import apply_page, stored, task_with

pytestmark = pytest.mark.django_db

T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"

CASES = [
    # (name, strategy, config, pages, expected external ids → key field, duplicates, rules)
    (
        "same external id twice on a page: newest wins",
        "external_id",
        {},
        [[{"id": "1", "n": "old", "updated_at": T2}, {"id": "1", "n": "new", "updated_at": T1}]],
        {"1": {"n": "old"}},
        1,
        {"new": 1},
    ),
    (
        "tie on updated-at: the later record on the page wins",
        "external_id",
        {},
        [
            [
                {"id": "1", "n": "first", "updated_at": T1},
                {"id": "1", "n": "second", "updated_at": T1},
            ]
        ],
        {"1": {"n": "second"}},
        1,
        {"new": 1},
    ),
    (
        "composite key ignores case and spacing",
        "composite_key",
        {"fields": ["email", "company"]},
        [
            [
                {"id": "1", "email": "a@x.com", "company": "Acme  Inc", "updated_at": T1},
                {"id": "2", "email": "A@X.com", "company": "acme inc", "updated_at": T2},
            ]
        ],
        {"1": {"email": "A@X.com"}},
        1,
        {"new": 1, "composite": 1},
    ),
    (
        "an incomplete composite key matches nothing",
        "composite_key",
        {"fields": ["email", "company"]},
        [[{"id": "1", "email": "a@x.com"}, {"id": "2", "email": "a@x.com"}]],
        {"1": {"email": "a@x.com"}, "2": {"email": "a@x.com"}},
        0,
        {"new": 2},
    ),
    (
        "email normalised: case and whitespace",
        "normalized_match",
        {},
        [
            [{"id": "1", "email": "ada@example.com", "updated_at": T1}],
            [{"id": "2", "email": "  Ada@EXAMPLE.com ", "updated_at": T2}],
        ],
        {"1": {"email": "  Ada@EXAMPLE.com "}},
        1,
        {"new": 1, "email": 1},
    ),
    (
        "phone normalised to E.164",
        "normalized_match",
        {"rules": [{"rule": "phone", "field": "phone", "region": "US"}]},
        [[{"id": "1", "phone": "(415) 555-0132"}, {"id": "2", "phone": "+1 415 555 0132"}]],
        {"1": {"phone": "+1 415 555 0132"}},
        1,
        {"new": 1, "phone": 1},
    ),
    (
        "invalid phone numbers never match",
        "normalized_match",
        {"rules": [{"rule": "phone", "field": "phone"}]},
        [[{"id": "1", "phone": "12"}, {"id": "2", "phone": "12"}]],
        {"1": {"phone": "12"}, "2": {"phone": "12"}},
        0,
        {"new": 2},
    ),
    (
        "company domain from URL and bare host",
        "normalized_match",
        {"rules": [{"rule": "domain", "field": "website"}]},
        [
            [
                {"id": "1", "website": "https://www.Acme.com/about"},
                {"id": "2", "website": "acme.com"},
            ]
        ],
        {"1": {"website": "acme.com"}},
        1,
        {"new": 1, "domain": 1},
    ),
    (
        "rules in order: email first, then phone",
        "normalized_match",
        {},
        [
            [{"id": "1", "email": "a@x.com", "phone": "+14155550132"}],
            [{"id": "2", "email": "other@x.com", "phone": "415-555-0132"}],
        ],
        {"1": {"email": "other@x.com"}},
        1,
        {"new": 1, "phone": 1},
    ),
    (
        "identical content collapses (ids and timestamps ignored)",
        "content_hash",
        {},
        [[{"id": "1", "n": "same", "updated_at": T1}, {"id": "2", "n": "same", "updated_at": T2}]],
        {"1": {"n": "same"}},
        1,
        {"new": 1, "content": 1},
    ),
]


@pytest.mark.parametrize(
    "strategy,config,pages,expected,duplicates,rules",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_strategy(tenant, strategy, config, pages, expected, duplicates, rules):
    task = task_with(tenant, dedup_strategy=strategy, dedup_config=config)
    total_duplicates, total_rules = 0, {}
    for page in pages:
        result = apply_page(task, page)
        total_duplicates += result.counts["duplicates"]
        for rule, n in result.rules.items():
            total_rules[rule] = total_rules.get(rule, 0) + n
    records = stored(task)
    assert set(records) == set(expected)
    for external_id, fields in expected.items():
        for key, value in fields.items():
            assert records[external_id].data[key] == value
    assert total_duplicates == duplicates
    assert total_rules == rules


def test_a_shared_email_never_merges_distinct_customers(tenant):
    """Two stored customers share info@; a third with that email is ambiguous, not merged."""
    task = task_with(tenant, dedup_strategy="normalized_match")
    apply_page(
        task,
        [{"id": "1", "email": "info@acme.com", "n": "A"}, {"id": "9", "email": "b@acme.com"}],
    )
    # Record 2 arrives with its own address, then its email changes to the shared one.
    apply_page(task, [{"id": "2", "email": "c@acme.com", "n": "B"}])
    result = apply_page(task, [{"id": "2", "email": "info@acme.com", "n": "B"}])
    assert result.rules == {"external_id": 1}, "existing records are matched by their own id"
    result = apply_page(task, [{"id": "3", "email": "INFO@acme.com", "n": "C"}])
    assert result.rules == {"ambiguous:email": 1, "new": 1}
    assert result.counts["created"] == 1 and result.counts["duplicates"] == 0
    assert {k: r.data["n"] for k, r in stored(task).items() if "n" in r.data} == {
        "1": "A",
        "2": "B",
        "3": "C",
    }


def test_content_hash_skips_no_op_updates(tenant):
    task = task_with(tenant, dedup_strategy="content_hash")
    page = [{"id": "1", "n": "x", "updated_at": T1}]
    assert apply_page(task, page).counts["created"] == 1
    version = stored(task)["1"].version
    result = apply_page(task, page)
    assert (result.counts["unchanged"], result.counts["updated"]) == (1, 0)
    assert stored(task)["1"].version == version


def test_an_older_version_than_the_stored_one_is_ignored(tenant):
    task = task_with(tenant)
    apply_page(task, [{"id": "1", "n": "new", "updated_at": T2}])
    result = apply_page(task, [{"id": "1", "n": "old", "updated_at": T1}])
    assert result.counts["unchanged"] == 1
    assert stored(task)["1"].data["n"] == "new"


@pytest.mark.parametrize(
    "strategy,config",
    [
        ("composite_key", {}),
        ("composite_key", {"fields": []}),
        ("normalized_match", {"rules": [{"rule": "fingerprint", "field": "x"}]}),
        ("normalized_match", {"rules": [{"rule": "email"}]}),
        ("content_hash", {"ignore_fields": "id"}),
        ("bogus", {}),
    ],
)
def test_invalid_configs_are_refused(strategy, config):
    with pytest.raises(DedupConfigError):
        strategy_for(strategy, config)
