from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from castiel import events
        from notifications import incidents, metrics  # noqa: F401  (collectors)

        # Every event raised anywhere (castiel.events.emit) reaches the incident fold.
        events.register_sink(incidents.handle)
