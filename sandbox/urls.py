from django.urls import path

from sandbox import batch, chat, views

app_name = "sandbox"
urlpatterns = [
    path("<slug:account>/_control/", views.control, name="control"),
    # The demo's chat inbox (before the generic collection routes).
    path("<slug:account>/chat/", chat.inbox, name="chat"),
    path("<slug:account>/chat/slack/", chat.slack, name="chat-slack"),
    path("<slug:account>/chat/teams/", chat.teams, name="chat-teams"),
    path("<slug:account>/<slug:name>/batch/<slug:operation>/", batch.batch, name="batch"),
    path("<slug:account>/<slug:name>/", views.collection, name="collection"),
    path("<slug:account>/<slug:name>/<int:pk>/", views.item, name="item"),
]
