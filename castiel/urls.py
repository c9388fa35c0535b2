from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from castiel.api import docs
from castiel.api.errors import api_not_found
from castiel.observability.health import healthz
from castiel.observability.views import metrics_view

urlpatterns = [
    path("admin/dashboard/", include("console.dashboard.urls")),  # before the admin's catch-all
    path("admin/", admin.site.urls),
    re_path(r"^api/(?P<version>v1)/", include("castiel.api.urls")),
    re_path(r"^api/(?P<version>v1)/", include("notifications.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("api/docs/", docs.swagger_ui, name="api-docs"),
    path("api/redoc/", docs.redoc, name="api-redoc"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("oauth/", include("credentials.urls")),
    path("", include("webhooks.urls")),
    # Anything else under /api/ is a JSON 404, also with DEBUG on.
    re_path(r"^api/", api_not_found),
]

if settings.CASTIEL_SANDBOX:
    # The simulated SaaS API (demo and tests); never served in production by default.
    urlpatterns.insert(0, path("sandbox/", include("sandbox.urls")))

if settings.CASTIEL_BENCH_VIEWS:
    from castiel.bench_views import bare_insert_view, bare_view

    urlpatterns.append(path("bench/bare/", bare_view))
    urlpatterns.append(path("bench/bare-insert/", bare_insert_view))

handler400 = "castiel.api.errors.handler400"
handler403 = "castiel.api.errors.handler403"
handler404 = "castiel.api.errors.handler404"
handler500 = "castiel.api.errors.handler500"
