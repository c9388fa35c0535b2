"""Every admin page as an operator sees it, in headless Chromium at 1280 and 1440 px with the
navigation sidebar open: each change list and one change page per model of the admin's
registry (so a new model is walked without editing this file), the operations dashboard and
the API documentation. Each page must fit (no horizontal overflow of the main content), log
no console error, make no failed or off-site request, and pass axe-core without a serious or
critical violation. Screenshots and ``report.json`` land in ``test-artifacts/walk/``.
"""

from __future__ import annotations

import warnings

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from tests.ui.browser import login
from tests.ui.population import busy_day, contacts, populate, third_party
from tests.ui.walk import WIDTHS, Walk, write_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.embedded,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

PASSWORD = "pw-operator-walk-1"

# Areas whose pages are walked and reported, but whose problems do not fail the walk yet: their
# owner fixes them (each entry says where). Remove an entry once its pages are clean.
PENDING: dict[str, str] = {}  # url prefix → why its problems are only warnings for now
# Pages walked again in the admin's dark theme (the toggle), for contrast.
DARK = ("/admin/", "/admin/syncing/record/", "/admin/syncing/syncrun/", "/admin/dashboard/")


def admin_pages() -> list[tuple[str, str]]:
    """(label, path) of every change list and one change page per registered model."""
    pages = []
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        pages.append((f"{opts.label} list", base))
        obj = model_admin.get_queryset(_superuser_request()).order_by("pk").first()
        if obj is not None:
            pages.append((f"{opts.label} page", f"{base}{obj.pk}/change/"))
    return pages


def _superuser_request():
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    return request


@pytest.fixture
def operator_walk(chromium, live_server, db):
    """A browser signed in as an operator, one tab per width (sharing the session)."""
    get_user_model().objects.create_superuser("operator", "ops@example.com", PASSWORD)
    walker = Walk(chromium, live_server.url)
    login(walker.tab(WIDTHS[0]), live_server.url, "operator", PASSWORD)
    cookies = walker.contexts[WIDTHS[0]].cookies()
    for width in WIDTHS[1:]:
        walker.tab(width, cookies)
    yield walker
    walker.close()


@pytest.fixture
def walk(operator_walk, tenant):
    """The same, over a database with one row of everything and a realistic day."""
    populate(tenant)
    integration = contacts(tenant)
    busy_day(tenant, integration.sync_tasks.first())
    third_party(get_user_model().objects.get(username="operator"))
    return operator_walk


def test_every_admin_page_fits_is_accessible_and_works_offline(walk):
    pages = [("home", "/admin/"), *admin_pages()]
    missing = [
        m._meta.label
        for m in admin.site._registry
        if f"{m._meta.label} page" not in {label for label, _ in pages}
    ]
    assert not missing, f"population.py made no row of {missing}: the walk cannot open them"
    reports = []
    for width in WIDTHS:
        for _label, path in pages:
            # Accessibility does not change with the width: axe runs at the first one.
            reports.append(walk.visit(path, width, axe=width == WIDTHS[0]))
        reports.append(
            walk.visit("/admin/dashboard/", width, axe=width == WIDTHS[0], ready="#panel-records")
        )
    dark = walk.tabs[WIDTHS[0]]
    dark.evaluate("localStorage.setItem('theme', 'dark')")
    for path in DARK:
        report = walk.visit(path, WIDTHS[0], shoot=False)
        report.url += " (dark theme)"
        reports.append(report)
    dark.evaluate("localStorage.removeItem('theme')")
    write_report(reports)
    pending = [r for r in reports if r.problems and any(r.url.startswith(p) for p in PENDING)]
    for report in pending:
        reason = next(v for k, v in PENDING.items() if report.url.startswith(k))
        warnings.warn(f"pending ({reason}): {report}", stacklevel=1)
    bad = [str(r) for r in reports if r.problems and r not in pending]
    assert not bad, f"{len(bad)} of {len(reports)} page views have problems:\n" + "\n".join(bad)


def test_the_api_docs_render_their_operations_offline(operator_walk):
    walk = operator_walk
    reports = []
    for width in WIDTHS:
        report = walk.visit("/api/docs/", width, ready=".opblock", axe=width == WIDTHS[0])
        page = walk.tabs[width]
        operations = page.locator(".opblock").count()
        if operations < 20:
            report.problems.append(f"only {operations} operations rendered")
        reports.append(report)
    bad = [str(r) for r in reports if r.problems]
    assert not bad, "\n".join(bad)
