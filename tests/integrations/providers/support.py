"""Shared test support for provider adapters, fed by each provider's recorded fixtures.

The django-allauth / Zulip idea: a provider's tests are mostly data — which fixture answers
which request — and :class:`ProviderContract` turns that data into the same checks for every
provider (paging across every page, rate-limit headers, each error fixture's classification,
a real sync run through the worker into the record store, webhook payloads through the
parser registry, the connection test). A provider's test module subclasses it and adds what
only that provider does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from responses import matchers

from castiel.http.errors import RateLimitedError
from credentials.services import credential_create
from integrations import webhook_events as parsers
from integrations.adapters.base import adapter_for
from integrations.adapters.errors import reason_of
from integrations.models import Integration
from integrations.providers import registry
from integrations.services import integration_test_connection
from integrations.webhook_events import Delivery
from syncing.models import SyncRun
from tests.syncing.helpers import make_task, records_of, run_once

PROVIDERS = Path(registry.__file__).parent


@dataclass
class Fixture:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON

    @property
    def text(self) -> str:
        return json.dumps(self.body)


def fixture(slug: str, name: str) -> Fixture:
    folder = PROVIDERS / slug / "fixtures"
    body = json.loads((folder / f"{name}.json").read_text())
    meta_path = folder / f"{name}.headers.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return Fixture(meta.get("status", 200), dict(meta.get("headers", {})), body)


def answer(rsps, method: str, url: str, slug: str, name: str, *, match=(), status=None):
    """Register ``url`` to answer exactly as the fixture ``name`` (status, headers, body)."""
    found = fixture(slug, name)
    headers = {k: v for k, v in found.headers.items() if k.lower() != "content-type"}
    content_type = next(
        (v for k, v in found.headers.items() if k.lower() == "content-type"), "application/json"
    )
    return rsps.add(
        method,
        url,
        body=found.text,
        status=status or found.status,
        headers=headers,
        content_type=content_type,
        match=list(match),
    )


def query(**params) -> list:
    """A matcher for exactly these query parameters (values compared as strings)."""
    return [matchers.query_param_matcher({k: str(v) for k, v in params.items()})]


def make_integration(
    tenant, slug: str, config: dict | None = None, *, credential=None, name: str | None = None
) -> Integration:
    integration = Integration.objects.create(
        tenant=tenant, provider=slug, name=name or f"{slug} test", config=config or {}
    )
    if credential is not None:
        kind, secret, settings = credential
        credential_create(integration=integration, type=kind, secret=secret, settings=settings)
    return integration


def walk(adapter, *, since=None, limit: int = 20) -> list:
    pages, cursor = [], None
    for _ in range(limit):
        page = adapter.fetch_page(cursor, since=since)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


def deliver(slug: str, name: str, *, parser: str | None = None):
    """A webhook fixture through the parser the registry holds for ``parser`` (or slug)."""
    found = fixture(slug, name)
    return parsers.get_parser(parser or slug)(
        Delivery(body=found.body, headers=found.headers, config={})
    )


class ProviderContract:
    """Checks every catalogue provider passes; subclasses fill in the data."""

    slug: ClassVar[str]
    entity: ClassVar[str]
    config: ClassVar[dict] = {}
    credential: ClassVar[tuple] = ("bearer_token", {"token": "test-token-not-real"}, {})
    # The list sequence, in paging order.
    pages: ClassVar[list[str]]
    # Fixture → (reason, retryable) when it answers the first list request.
    errors: ClassVar[dict[str, tuple[str, bool]]] = {}
    # Webhook fixture → [(event type, entity type, external id, complete, deleted)].
    webhooks: ClassVar[dict[str, list[tuple]]] = {}
    # (method, URL) of the test-connection call and its success fixture.
    connection: ClassVar[tuple[str, str, str]]
    # Fixture answering the test-connection call → the code the report gives.
    connection_failures: ClassVar[dict[str, str]] = {}

    # -- what subclasses provide -------------------------------------------------------

    def mock_pages(self, rsps) -> None:
        """Register every page of ``pages`` for a full (non-incremental) walk."""
        raise NotImplementedError

    def first_page_request(self) -> tuple[str, str]:
        """(method, URL) of the first list request (errors answer it)."""
        raise NotImplementedError

    def expected_ids(self) -> list[str]:
        """The external ids a full walk yields, in order."""
        raise NotImplementedError

    def expected_stored_ids(self) -> list[str]:
        """What a sync stores live (tombstones among the pages are not)."""
        return self.expected_ids()

    def expected_rate_limit(self) -> tuple[int | None, int | None] | None:
        """(limit, remaining) the first page reports, or None."""
        return None

    # -- helpers -----------------------------------------------------------------------

    @pytest.fixture
    def integration(self, tenant):
        return make_integration(tenant, self.slug, dict(self.config), credential=self.credential)

    def fresh(self, integration, name: str) -> Integration:
        return make_integration(
            integration.tenant,
            self.slug,
            dict(integration.config),
            credential=self.credential,
            name=f"{self.slug} {name}",
        )

    def adapter(self, integration, entity: str | None = None):
        return adapter_for(integration, entity or self.entity)

    # -- the contract ------------------------------------------------------------------

    @pytest.mark.django_db
    def test_pages_through_every_fixture_page(self, integration, rsps):
        self.mock_pages(rsps)
        adapter = self.adapter(integration)
        adapter.validate()
        pages = walk(adapter)
        assert len(pages) == len(self.pages)
        ids = [adapter.external_id(r) for page in pages for r in page.records]
        assert ids == self.expected_ids()
        assert all(page.next_cursor is not None for page in pages[:-1])

    @pytest.mark.django_db
    def test_rate_limit_headers_reach_the_page(self, integration, rsps):
        self.mock_pages(rsps)
        page = self.adapter(integration).fetch_page(None)
        expected = self.expected_rate_limit()
        if expected is None:
            assert page.rate_limit is None
        else:
            assert (page.rate_limit.limit, page.rate_limit.remaining) == expected

    @pytest.mark.django_db
    def test_error_fixtures_are_classified(self, integration, rsps):
        assert self.errors, "a provider contract lists its error fixtures"
        method, url = self.first_page_request()
        for name, (reason, retryable) in self.errors.items():
            rsps.reset()
            answer(rsps, method, url, self.slug, name)
            # A fresh integration each time: a rate-limit answer blocks the integration's
            # limiter bucket, which the next request would otherwise wait for.
            adapter = self.adapter(self.fresh(integration, name))
            with pytest.raises(Exception) as caught:
                adapter.fetch_page(None)
            error = caught.value
            assert (reason_of(error), error.retryable) == (reason, retryable), name
            if reason == "rate_limited":
                # The workers wait for these (retry_after, or backoff when a provider sends
                # no wait, like Stripe) instead of failing.
                assert isinstance(error, RateLimitedError), name
            assert "test-token-not-real" not in str(error)

    @pytest.mark.django_db(transaction=True)
    def test_a_sync_run_lands_every_record_in_the_store(self, integration, rsps, enqueued):
        self.mock_pages(rsps)
        task = make_task(integration, self.entity, mode="full")
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert run.pages == len(self.pages)
        stored = records_of(task)
        assert sorted(stored) == sorted(self.expected_stored_ids())
        assert run.created == len(self.expected_stored_ids())

    def test_webhook_fixtures_parse_to_the_records_they_name(self):
        if not registry.get(self.slug).webhook_scheme:
            # Nothing to parse, and nothing may pretend otherwise.
            assert not registry.get(self.slug).webhook_events and not self.webhooks
            return
        assert self.webhooks, "a provider with webhooks lists its webhook fixtures"
        for name, expected in self.webhooks.items():
            events = deliver(self.slug, name)
            got = [(e.type, e.entity_type, e.external_id, e.complete, e.deleted) for e in events]
            assert got == expected, name
            declared = registry.get(self.slug).webhook_events
            for event in events:
                if event.external_id:
                    assert event.entity_type in declared.values()

    def test_webhook_fixtures_mean_what_the_event_table_says(self):
        """Derived from the provider's event table (``webhooks.py``): each webhook fixture's
        events name the record at the row's id path, as the row's entity type, complete and
        deleted as the row says, and route as the row says."""
        from webhooks.routing import actions_for, auto_actions

        table = registry.get(self.slug).webhooks
        if table is None:
            return
        folder = PROVIDERS / self.slug / "fixtures"
        names = sorted(
            p.name.removesuffix(".json")
            for p in folder.glob("webhook_*.json")
            if not p.name.endswith(".headers.json")
        )
        for name in names:
            body = fixture(self.slug, name).body
            events = deliver(self.slug, name)
            items = body if isinstance(body, list) else [body] * len(events)
            for event, item in zip(events, items, strict=True):
                row = table.row(event.type)
                assert row is not None, f"{name}: {event.type} is not in the event table"
                assert event.provider == self.slug
                assert event.external_id == row.record_id(item) != "", name
                assert event.entity_type == (row.entity_type or event.entity_type), name
                assert (event.complete, event.deleted) == (row.complete, row.deleted), name
                expected = auto_actions(event) if row.actions == "auto" else list(row.actions)
                assert actions_for(event, parser=self.slug) == expected, name

    @pytest.mark.django_db
    def test_connection_test_succeeds_with_the_documented_answer(self, integration, rsps):
        method, url, name = self.connection
        answer(rsps, method, url, self.slug, name)
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (True, "ok"), result.message
        assert registry.get(self.slug).name in result.message

    @pytest.mark.django_db
    def test_connection_test_says_what_is_wrong(self, integration, rsps):
        method, url, _ = self.connection
        for name, code in self.connection_failures.items():
            rsps.reset()
            answer(rsps, method, url, self.slug, name)
            result = integration_test_connection(integration=self.fresh(integration, name))
            assert (result.ok, result.code) == (False, code), (name, result.message)
            assert result.message and "test-token-not-real" not in result.message

    @pytest.mark.django_db
    def test_connection_test_without_a_credential(self, tenant):
        integration = make_integration(tenant, self.slug, dict(self.config), name="bare")
        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (False, "no_credential")
