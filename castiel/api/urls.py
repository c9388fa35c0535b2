"""``/api/v1/`` — each app contributes its routes from its own ``api/urls.py``."""

from django.urls import include, path

from castiel.tenancy.api.views import TenantView

urlpatterns = [
    path("tenant/", TenantView.as_view(), name="tenant"),
    path("", include("integrations.api.urls")),
    path("", include("credentials.api.urls")),
    path("", include("syncing.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("ratelimit.api.urls")),
]
