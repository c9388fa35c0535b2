from django.urls import path

from sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("<slug:account>/_control/", views.control, name="control"),
    path("<slug:account>/<slug:name>/", views.collection, name="collection"),
    path("<slug:account>/<slug:name>/<int:pk>/", views.item, name="item"),
]
