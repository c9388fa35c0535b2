"""A page's history names each created record exactly: its id, its external id as the
provider spelled it (whatever characters it holds) and its version."""

from __future__ import annotations

import pytest

from syncing.models import RecordChange
from tests.syncing.pipeline_support import apply_with, pipeline_for, stored, task_with

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

AWKWARD_IDS = [
    'with "quotes"',
    "back\\slash",
    "comma, and {braces}",
    "NULL",
    " spaced ",
    "ünïcødé 😀",
    "tab\tand\nnewline",
    "'single'",
    "x" * 255,
]


def test_created_rows_carry_each_records_exact_external_id_and_version(tenant):
    task = task_with(tenant)
    run = pipeline_for(task)
    apply_with(run, [{"id": "first", "name": "n"}])  # the next page is written as creates
    apply_with(run, [{"id": external_id, "name": "n"} for external_id in AWKWARD_IDS])

    records = stored(task)
    rows = {
        change.external_id: change
        for change in RecordChange.objects.filter(integration_id=task.integration_id)
    }
    assert sorted(rows) == sorted(["first", *AWKWARD_IDS])
    for external_id, change in rows.items():
        record = records[external_id]
        assert (change.action, change.record_id, change.version) == (
            "created",
            record.id,
            record.version,
        )
        assert (change.tenant_id, change.entity_type) == (tenant.id, task.entity_type)
