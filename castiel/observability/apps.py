from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "castiel.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self):
        from django_q.signals import post_spawn

        from castiel.observability import heartbeat, scaling, tracing
        from castiel.observability.logging import configure_structlog

        configure_structlog()
        tracing.configure()
        scaling.register()
        post_spawn.connect(heartbeat.on_worker_spawn, dispatch_uid="castiel-heartbeat")
