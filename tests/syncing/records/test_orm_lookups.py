"""The pull's record lookups read the page's rows, not the whole scope (PostgreSQL).

Each page of a pull looks its records up by id and by external id. During an integration's
first load the table's statistics do not know its rows yet; a lookup that also named the
tenant let PostgreSQL pick the tenant index and read every record of the scope, so each page
got slower as the load went on (docs/benchmarks.md, "Inbound commit path").
"""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from syncing.records.stores.base import Scope
from syncing.records.stores.orm import OrmRecordStore
from tests.factories import IntegrationFactory
from tests.syncing.records.test_stores import make

pytestmark = pytest.mark.django_db


def rows_read(sql: str) -> int:
    """Rows the plan's scans produced or filtered away (EXPLAIN ANALYZE of ``sql``)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node) -> int:
        own = 0
        if "Scan" in node["Node Type"]:
            own = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


def test_a_pages_lookups_read_its_rows_not_the_scope(postgres, tenant):
    scope = Scope(tenant.id, IntegrationFactory(tenant=tenant).id, "contacts")
    store = OrmRecordStore()
    records = [make(scope, str(i)) for i in range(3000)]
    store.write(scope, records, [])  # no ANALYZE since: as during a first load
    page = records[:10]
    wanted = [r.id for r in page]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert set(store.get_many(scope, wanted, lock=True)) == set(wanted)
        found = store.find_by_external_ids(scope, [r.external_id for r in page], lock=True)
        assert set(found) == {r.external_id for r in page}
    lookups = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(lookups) == 2
    for sql in lookups:
        assert rows_read(sql) <= 2 * len(page), sql[:200]
