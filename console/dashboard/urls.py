from django.contrib import admin
from django.urls import path

from console.dashboard import views

# Under /admin/dashboard/ and behind the admin's own login (admin_view).
urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="castiel-dashboard"),
    path("data/", admin.site.admin_view(views.dashboard_data), name="castiel-dashboard-data"),
]
