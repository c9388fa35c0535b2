"""The next page is requested while PostgreSQL still writes the one before
(syncing/inbound/read_ahead.py, castiel/db/overlap.py) — and the run stays exactly what it was:
the same records, history, retries and waits, one request per page."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from castiel.db import overlap
from syncing.inbound.pipeline import PagePipeline
from syncing.inbound.waiting import Waiting
from syncing.models import Record, RecordChange, SyncRun
from tests.syncing.helpers import make_integration, make_task, records_of, run_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PAGES = 3
PER_PAGE = 10
CONFIG = {
    "records_path": "data",
    "pagination": {
        "style": "page",
        "page_param": "_page",
        "size_param": "_per_page",
        "next_page_path": "next",
        "page_size": PER_PAGE,
    },
}


def contact(i: int) -> dict:
    return {"id": str(i), "name": f"Contact {i}"}


class Provider:
    """A paged contacts API on a real local HTTP server; ``on_request(page)`` runs in the
    server's thread before each answer and may return an error answer instead."""

    def __init__(self, http_server, on_request=None):
        self.server = http_server
        self.on_request = on_request or (lambda page: None)
        http_server.route("GET", "/contacts")(self._answer)

    def _answer(self, request):
        page = int(request.query["_page"][0])
        error = self.on_request(page)
        if error is not None:
            return error
        first = (page - 1) * PER_PAGE + 1
        data = [contact(i) for i in range(first, first + PER_PAGE)]
        return 200, self.headers(page), {"data": data, "next": page + 1 if page < PAGES else None}

    def headers(self, page: int) -> dict:
        return {}

    def requests_for(self, page: int) -> int:
        return sum(
            1
            for r in self.server.requests
            if r.path == "/contacts" and r.query["_page"] == [str(page)]
        )


@pytest.fixture
def task(tenant, http_server):
    return make_task(make_integration(tenant, http_server.url + "/", **CONFIG))


def everything_landed(task, run):
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, run.created) == (PAGES, PAGES * PER_PAGE)
    expected = {str(i): contact(i) for i in range(1, PAGES * PER_PAGE + 1)}
    assert records_of(task) == expected
    assert RecordChange.objects.filter(action="created").count() == PAGES * PER_PAGE


@pytest.fixture
def slow_history():
    """PostgreSQL takes a second over the first page's history (a deferred constraint trigger
    on its first row): long enough to see who asks for the next page meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION castiel_test_slow_history() RETURNS trigger AS $$ BEGIN "
            "IF NEW.external_id = '1' THEN PERFORM pg_sleep(1); END IF; RETURN NULL; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER castiel_test_slow_history AFTER INSERT ON "
            "syncing_recordchange DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "EXECUTE FUNCTION castiel_test_slow_history()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER castiel_test_slow_history ON syncing_recordchange")
        cursor.execute("DROP FUNCTION castiel_test_slow_history()")


def committed_records() -> int:
    """What another connection sees committed (from the HTTP server's thread)."""
    try:
        return Record.objects.count()
    finally:
        connection.close()


def test_the_next_page_is_requested_while_postgres_still_writes_the_page_before(
    postgres, task, http_server, enqueued, slow_history
):
    seen_at_request: dict[int, int] = {}

    def note(page):
        seen_at_request[page] = committed_records()

    provider = Provider(http_server, note)
    run = run_once(task, enqueued)

    everything_landed(task, run)
    # Page 2 was asked for before page 1 committed: PostgreSQL was still on its history.
    assert seen_at_request[2] == 0
    assert [provider.requests_for(page) for page in (1, 2, 3)] == [1, 1, 1]
    assert not [t for t in threading.enumerate() if t.name.startswith("castiel-read-ahead")]


def test_a_provider_error_on_the_request_sent_ahead_is_the_pages_first_attempt(
    postgres, task, http_server, enqueued, fast_retries
):
    failed = []

    def fail_page_2_once(page):
        if page == 2 and not failed:
            failed.append(page)
            return 503, {}, {"error": "try again"}
        return None

    provider = Provider(http_server, fail_page_2_once)
    run = run_once(task, enqueued)

    everything_landed(task, run)
    assert run.retries == 1
    assert [entry["code"] for entry in run.retry_log] == ["http_503"]
    assert provider.requests_for(2) == 2


def test_nothing_is_requested_ahead_of_an_exhausted_provider_limit(
    postgres, task, http_server, enqueued, monkeypatch
):
    class Exhausted(Provider):
        def headers(self, page):
            return {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}

    provider = Exhausted(http_server)
    asked_while_waiting = []

    def sleep(self, seconds):
        asked_while_waiting.append(sum(provider.requests_for(p) for p in (1, 2, 3)))

    monkeypatch.setattr(Waiting, "sleep", sleep)
    run = run_once(task, enqueued)

    everything_landed(task, run)
    assert asked_while_waiting == [1, 2]  # after pages 1 and 2: nothing sent before the wait


def test_a_failure_inside_the_helper_is_not_the_providers_answer(
    postgres, task, http_server, enqueued, monkeypatch
):
    real_map_page = PagePipeline.map_page

    def map_page(self, raw_records):
        if threading.current_thread().name.startswith("castiel-read-ahead"):
            raise RuntimeError("a bug in the helper")
        return real_map_page(self, raw_records)

    monkeypatch.setattr(PagePipeline, "map_page", map_page)
    provider = Provider(http_server)
    run = run_once(task, enqueued)

    everything_landed(task, run)
    assert run.retries == 0
    # The worker asked again itself: the helper's answer was not trusted.
    assert [provider.requests_for(page) for page in (1, 2, 3)] == [1, 2, 2]


def test_a_helper_that_cannot_start_costs_the_page_nothing(
    postgres, task, http_server, enqueued, monkeypatch
):
    def refuse(self, *args, **kwargs):
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr("syncing.inbound.read_ahead.ThreadPoolExecutor.submit", refuse)
    provider = Provider(http_server)
    run = run_once(task, enqueued)

    everything_landed(task, run)
    assert [provider.requests_for(page) for page in (1, 2, 3)] == [1, 1, 1]


def test_statements_sent_ahead_fail_the_transaction_they_belong_to(postgres, tenant):
    """A foreign key broken by a statement sent ahead surfaces when the block waits (its
    checks run there, not at COMMIT), as Django's IntegrityError, and nothing of the
    transaction is kept."""
    table = RecordChange._meta.db_table
    after_the_block = []
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, record_id, integration_id, entity_type, "  # noqa: S608
                "external_id, action, fields, source, source_id, actor, correlation_id, at, "
                "version, txid) VALUES (%s, gen_random_uuid(), gen_random_uuid(), 'contacts', "
                "'1', 'created', '[]', 'run', '', '', '', now(), 1, 0)",
                [tenant.id],
            )
            with overlap.sent_ahead(check_constraints=True):
                cursor.execute(
                    f"INSERT INTO {table} (tenant_id, record_id, integration_id, entity_type, "  # noqa: S608
                    "external_id, action, fields, source, source_id, actor, correlation_id, "
                    "at, version, txid) VALUES (gen_random_uuid(), gen_random_uuid(), "
                    "gen_random_uuid(), 'contacts', '2', 'created', '[]', 'run', '', '', '', "
                    "now(), 1, 0)"
                )
            after_the_block.append(True)
    assert not after_the_block
    assert not RecordChange.objects.exists()
