import oauth_views
from django.urls import include, path

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/me/", oauth_views.me),
    path("test/login/", oauth_views.login_view),
    path("test/seed/", oauth_views.seed_tokens),
    path("test/expire/", oauth_views.expire_token),
    path("test/revoke-all/", oauth_views.revoke_all),
    path("test/stats/", oauth_views.stats),
]
