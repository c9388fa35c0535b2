from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        # Metrics (incl. the scrape-time pending-events gauge) and cache invalidation.
        from webhooks import metrics, signals  # noqa: F401
