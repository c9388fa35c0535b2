from django.urls import path

from credentials.views import oauth_callback

app_name = "credentials"

urlpatterns = [path("callback/", oauth_callback, name="oauth-callback")]
