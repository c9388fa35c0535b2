"""``/webhooks/<registration id>/`` (the trailing slash is optional: providers are configured
by hand, and a POST must never be redirected)."""

from django.urls import re_path

from webhooks.views import receive

UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

urlpatterns = [
    re_path(rf"^webhooks/(?P<registration_id>{UUID})/$", receive, name="webhook-receive"),
    re_path(rf"^webhooks/(?P<registration_id>{UUID})$", receive),
]
