from django.apps import AppConfig


class RatelimitConfig(AppConfig):
    name = "ratelimit"
    label = "ratelimit"
    verbose_name = "Rate limits"

    def ready(self):
        from castiel.observability.health import register_check
        from castiel.observability.metrics import register_scrape_collector
        from ratelimit import signals  # noqa: F401  (policy cache invalidation)
        from ratelimit.limiter import degraded_gauge, health_check

        register_check("ratelimit", health_check)
        register_scrape_collector("ratelimit_degraded", degraded_gauge)
