"""Shared fixtures: tenants and API clients, real services, subprocess helpers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from castiel.tenancy import services as tenancy
from tests.support import processes
from tests.support.services import require_postgres, require_redis

# The browser (one Playwright per test session: a second would find the first's event loop
# running), for tests/ui and the demo inbox test in tests/notifications.
from tests.ui.browser import chromium, page  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _fresh_cache(django_db_blocker):
    """Each test starts with an empty cache: the database cache table survives the test
    database flush, and Redis outlives every test. Only this run's keys are removed (the
    Redis server is shared with other runs), never the whole server."""
    yield
    from django.core.cache import cache

    try:
        with django_db_blocker.unblock():
            if hasattr(cache, "delete_pattern"):
                cache.delete_pattern("*")  # django-redis: only keys under our KEY_PREFIX
            else:
                cache.clear()
    except Exception:  # noqa: S110 - a test that broke the cache on purpose cleans up itself
        pass


@pytest.fixture
def tenant(db):
    return tenancy.tenant_create(name="Tenant A")


@pytest.fixture
def other_tenant(db):
    return tenancy.tenant_create(name="Tenant B")


def client_for(tenant) -> APIClient:
    _key, raw = tenancy.api_key_create(tenant=tenant, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_key = raw
    return client


@pytest.fixture
def api(tenant) -> APIClient:
    """An API client authenticated as ``tenant``."""
    return client_for(tenant)


@pytest.fixture
def other_api(other_tenant) -> APIClient:
    return client_for(other_tenant)


@pytest.fixture
def detailed_client(client, settings):
    """A test client that sees /healthz's details: it carries the metrics token."""
    settings.CASTIEL_METRICS_TOKEN = "test-metrics-token"
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer test-metrics-token"
    return client


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def postgres(db) -> None:
    require_postgres()


@pytest.fixture
def spawn(tmp_path):
    """Start real Castiel processes against the test database; all stopped afterwards."""
    started: list[processes.Process] = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "proc"):
        proc = processes.Process(
            list(args),
            env=processes.process_env(tmp_path, **(env or {})),
            log_path=tmp_path / f"{name}-{len(started)}.log",
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def run_tasks_inline(monkeypatch):
    """Run queued tasks synchronously in this process.

    Yields ``flush()``: it runs every task queued so far (and the tasks those queue), as the
    commit of the surrounding transaction would in production.
    """
    from django.db import connection
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)

    def flush() -> int:
        # The test transaction never commits, so run what commit would have run.
        ran = 0
        while connection.run_on_commit:
            _savepoints, callback, _robust = connection.run_on_commit.pop(0)
            callback()
            ran += 1
        return ran

    yield flush


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 recording requests (tests/support/httpserver.py)."""
    from tests.support.httpserver import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def no_push_rules():
    """Rule-triggered pushes (``push.evaluate_rules`` follows every routed webhook event) are
    the outbound engine's subject; tests of the sync side put a no-op in their place."""
    from webhooks import routing

    previous = routing.registered_actions().get(routing.EVALUATE_RULES)
    routing.register_action(routing.EVALUATE_RULES, lambda event, context: None)
    yield
    if previous is None:
        routing.unregister_action(routing.EVALUATE_RULES)
    else:
        routing.register_action(routing.EVALUATE_RULES, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (the browser fixture screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
