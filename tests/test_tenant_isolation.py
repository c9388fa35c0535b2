"""Reusable tenant-isolation test: every ``/api/v1/`` endpoint joins it automatically.

Endpoints are found by walking the URL configuration, so a new endpoint cannot opt out by
being forgotten: it must be tenant-scoped through ``castiel.api.base`` (and have an isolation
maker registered for its model in ``tests/<app>/factories.py``) or declare
``tenant_isolation = "<why it cannot leak>"`` on its view class.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

import tests
from castiel.api.base import TenantScopedViewMixin
from tests.conftest import client_for
from tests.factories import ISOLATION_MAKERS

API_PREFIX = "^api/(?P<version>v1)/"


def _load_factories() -> None:
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        if info.name.endswith(".factories"):
            importlib.import_module(info.name)


def _api_patterns() -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                found.append((prefix + str(pattern.pattern), pattern))

    walk(get_resolver().url_patterns, "")
    return [(route, p) for route, p in found if route.startswith(API_PREFIX)]


def _view_class(pattern: URLPattern):
    return getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)


def _scoped_viewsets() -> dict[type, list[URLPattern]]:
    by_class: dict[type, list[URLPattern]] = defaultdict(list)
    for _route, pattern in _api_patterns():
        cls = _view_class(pattern)
        if cls is not None and issubclass(cls, TenantScopedViewMixin):
            by_class[cls].append(pattern)
    return by_class


_load_factories()
SCOPED = _scoped_viewsets()


def test_every_api_endpoint_is_tenant_scoped_or_explains_why():
    unscoped = []
    for route, pattern in _api_patterns():
        cls = _view_class(pattern)
        if cls is None:
            continue  # plain function views (the JSON 404 fallback) hold no tenant data
        if issubclass(cls, TenantScopedViewMixin) or getattr(cls, "tenant_isolation", None):
            continue
        unscoped.append(f"{route} ({cls.__name__})")
    assert not unscoped, "API endpoints outside tenant scoping: " + ", ".join(unscoped)


def test_every_scoped_model_has_an_isolation_maker():
    missing = sorted(
        f"{cls.__name__} → {cls.queryset.model.__name__}"
        for cls in SCOPED
        if cls.queryset.model not in ISOLATION_MAKERS
    )
    assert not missing, "register isolation makers in tests/<app>/factories.py for: " + ", ".join(
        missing
    )


def _url(pattern: URLPattern, obj=None, cls=None) -> str:
    kwargs = {"version": "v1"}
    if obj is not None:
        field = getattr(cls, "lookup_field", "pk")
        url_kwarg = getattr(cls, "lookup_url_kwarg", None) or field
        kwargs[url_kwarg] = getattr(obj, field)
    return reverse(pattern.name, kwargs=kwargs)


def _ids(response) -> set[str]:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return {str(row.get("id")) for row in rows}


@pytest.mark.parametrize("viewset", list(SCOPED), ids=lambda cls: cls.__name__)
def test_another_tenants_objects_are_invisible_and_untouchable(viewset, tenant, other_tenant):
    model = viewset.queryset.model
    make = ISOLATION_MAKERS.get(model)
    if make is None:
        pytest.fail(f"no isolation maker for {model.__name__}")
    theirs = make(other_tenant)
    mine, owner = client_for(tenant), client_for(other_tenant)
    for pattern in SCOPED[viewset]:
        actions = getattr(pattern.callback, "actions", {}) or {}
        is_detail = "(?P<" in str(pattern.pattern)
        if not is_detail:
            if "get" in actions:
                url = _url(pattern)
                assert str(theirs.pk) not in _ids(mine.get(url)), f"{url} leaks across tenants"
                assert str(theirs.pk) in _ids(owner.get(url)), f"{url}: owner cannot see it"
            continue
        url = _url(pattern, theirs, viewset)
        for method in list(actions):
            if method in ("get", "head", "options"):
                response = mine.generic(method.upper(), url)
            else:
                response = mine.generic(
                    method.upper(), url, data="{}", content_type="application/json"
                )
            assert response.status_code == 404, (
                f"{method.upper()} {url} as another tenant gave {response.status_code}"
            )
            if method != "head":
                assert response.json()["code"] == "not_found"
        if "get" in actions:
            assert owner.get(url).status_code == 200
    assert model.objects.filter(pk=theirs.pk).exists(), "another tenant deleted the object"
