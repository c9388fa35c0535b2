"""/healthz in the open: the overall status and each check's name and status, nothing else.

The details (exception text, hosts, broker and backend names, missing clusters) are for the
metrics scraper (``Authorization: Bearer <CASTIEL_METRICS_TOKEN>``) and for staff signed in
to the admin. A load balancer polling it every second must not write to the cache each time.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def failing_check():
    """A check failing with the kind of text a driver puts in its exceptions."""
    from castiel.observability import health

    def database_down():
        raise RuntimeError(
            'connection to server at "db.internal" (10.1.2.3), port 5432 failed: '
            'password authentication failed for user "castiel_prod"'
        )

    health.register_check("primary", database_down)
    yield
    health._checks.pop("primary", None)


def test_anonymous_healthz_shows_names_and_statuses_only(client, failing_check):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["primary"] == {"status": "fail"}
    assert {"database", "cache", "broker", "workers", "schedules"} <= body["checks"].keys()
    assert all(set(check) == {"status"} for check in body["checks"].values()), body
    text = response.content.decode()
    for leak in ("db.internal", "10.1.2.3", "5432", "castiel_prod", "RuntimeError"):
        assert leak not in text


def test_the_metrics_token_shows_the_details(client, settings, failing_check):
    settings.CASTIEL_METRICS_TOKEN = "scrape-me"
    assert "detail" not in client.get("/healthz").json()["checks"]["primary"]
    wrong = client.get("/healthz", HTTP_AUTHORIZATION="Bearer not-it").json()
    assert "detail" not in wrong["checks"]["primary"]
    check = client.get("/healthz", HTTP_AUTHORIZATION="Bearer scrape-me").json()["checks"]
    assert check["primary"]["status"] == "fail"
    assert "db.internal" in check["primary"]["detail"]
    assert "latency_ms" in check["database"]


def test_staff_see_the_details_other_users_do_not(client, failing_check):
    user = User.objects.create_user("someone", password="pw-someone-123")
    client.force_login(user)
    assert "detail" not in client.get("/healthz").json()["checks"]["primary"]
    user.is_staff = True
    user.save()
    assert "db.internal" in client.get("/healthz").json()["checks"]["primary"]["detail"]


def test_healthz_does_not_write_to_the_cache_on_every_call(client, monkeypatch):
    writes = []
    for name in ("set", "add", "set_many", "incr", "delete", "touch"):
        original = getattr(cache, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            writes.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(cache, name, spy)
    for _ in range(5):
        assert client.get("/healthz").json()["checks"]["cache"]["status"] == "ok"
    assert len(writes) <= 1, writes


def test_healthz_still_fails_when_the_cache_loses_what_it_stored(client, settings):
    # A cache that stores nothing (the setting_changed signal swaps the cache handler).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.CASTIEL_METRICS_TOKEN = "scrape-me"
    check = client.get("/healthz", HTTP_AUTHORIZATION="Bearer scrape-me").json()["checks"]
    assert check["cache"]["status"] == "fail", check["cache"]
