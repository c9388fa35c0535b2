"""A first load writes its pages as creates without looking them up (syncing/inbound/
pipeline.py, ``PagePipeline.apply``): once a run's page held only new records, the next page
skips the two lookups, and the store's refusal of a record that exists after all sends that
page back to be decided against the store. These tests hold one pipeline across pages, as a
run does, and put a record in its way between them, as a webhook or an API write would."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from syncing.models import Record
from tests.syncing.pipeline_support import apply_with, pipeline_for, stored, task_with

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"


def page(*ids, **fields):
    return [{"id": str(i), "name": f"n{i}", "updated_at": T1, **fields} for i in ids]


def record_reads(queries) -> list[str]:
    """The SELECTs among ``queries`` that read the record table."""
    table = f'"{Record._meta.db_table}"'
    return [
        q["sql"] for q in queries if q["sql"].lstrip().startswith("SELECT") and table in q["sql"]
    ]


def test_after_a_page_of_new_records_the_next_page_is_written_without_lookups(tenant):
    task = task_with(tenant)
    run = pipeline_for(task)
    first = apply_with(run, page(1, 2))
    with CaptureQueriesContext(connection) as queries:
        second = apply_with(run, page(3, 4))
    assert first.counts["created"] == second.counts["created"] == 2
    assert second.rules == {"new": 2}
    assert record_reads(queries) == []  # written straight away
    assert sorted(stored(task)) == ["1", "2", "3", "4"]


def test_a_record_written_meanwhile_is_updated_not_refused(tenant):
    task = task_with(tenant)
    run = pipeline_for(task)
    apply_with(run, page(1, 2))
    apply_with(pipeline_for(task), page(3, name="from a webhook"))  # another writer
    result = apply_with(run, [*page(4), {"id": "3", "name": "pulled", "updated_at": T2}])
    assert result.counts["created"] == 1
    assert result.counts["updated"] == 1
    records = stored(task)
    assert records["3"].data["name"] == "pulled"
    assert records["4"].data["name"] == "n4"
    # The refused attempt left nothing behind: the page was written once.
    assert Record.objects.filter(integration_id=task.integration_id).count() == 4


def test_after_a_page_that_met_a_stored_record_the_next_page_is_looked_up(tenant):
    task = task_with(tenant)
    apply_with(pipeline_for(task), page(1))
    run = pipeline_for(task)
    apply_with(run, page(1, 2, name="changed"))
    with CaptureQueriesContext(connection) as queries:
        apply_with(run, page(3))
    assert record_reads(queries)


def test_a_tombstone_after_new_pages_deletes_the_stored_record(tenant):
    task = task_with(tenant)
    run = pipeline_for(task)
    apply_with(run, page(1, 2))
    result = apply_with(run, [*page(3), {"id": "1", "deleted": True, "updated_at": T2}])
    assert result.counts["deleted"] == 1
    assert result.counts["created"] == 1
    assert stored(task, include_deleted=True)["1"].deleted_at is not None


def test_match_keys_still_merge_a_record_after_new_pages(tenant):
    task = task_with(tenant, dedup_strategy="composite_key", dedup_config={"fields": ["email"]})
    run = pipeline_for(task)
    apply_with(run, page(1, email="ada@example.com"))
    result = apply_with(run, page(2, email="ADA@example.com"))
    assert result.counts["created"] == 0
    assert result.rules == {"composite": 1}
    assert sorted(stored(task)) == ["1"]
