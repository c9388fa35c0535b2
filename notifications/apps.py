from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from castiel import events
        from notifications import event_webhooks, incidents, metrics  # noqa: F401  (collectors)

        # Every event raised anywhere (castiel.events.emit) reaches the incident fold, and the
        # tenant application events (sync.completed …) the tenants' event subscriptions.
        events.register_sink(incidents.handle)
        events.register_sink(event_webhooks.handle)
        from notifications import event_admin  # noqa: F401  (registers its admin)
