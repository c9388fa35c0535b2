"""/api/docs/ (Swagger UI) and /api/redoc/ come from the application, never from a CDN.

A user pastes an API key into Swagger UI: no foreign script may run beside it, and the pages
must work offline and in networks that block CDNs. The Content-Security-Policy allows the
site itself only.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def _assets(html: str) -> list[str]:
    return ASSET.findall(html)


def _csp(response) -> dict[str, set[str]]:
    policy = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        policy[name] = set(values)
    return policy


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_their_assets_from_the_site(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assets = _assets(html)
    assert assets, html
    for url in assets:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert not url.startswith("//"), url
        if url.startswith("/static/"):
            path = url.split("?")[0].removeprefix("/static/")
            assert finders.find(path), f"{url} is not a static file of the application"
    assert "<script>" not in html, "inline script: the policy would have to allow it"


@pytest.mark.parametrize("page", ["/api/docs/", "/api/docs/?script=", "/api/redoc/"])
def test_the_docs_pages_allow_only_the_site_itself(client, page):
    response = client.get(page)
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["default-src"] == {"'self'"}
    assert policy["script-src"] == {"'self'"}
    assert policy["object-src"] == {"'none'"}
    assert policy["frame-ancestors"] == {"'none'"}
    for values in policy.values():
        for value in values:
            assert value in {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}, value
    assert "'unsafe-inline'" not in policy["script-src"]


def test_the_swagger_ui_script_is_served_by_the_site(client):
    html = client.get("/api/docs/").content.decode()
    init = [url for url in _assets(html) if "script=" in url]
    assert init == ["/api/docs/?script="]
    script = client.get(init[0])
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
