from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from integrations.providers import registry

        # Explicit: every folder under integrations/providers/ is imported here; a broken
        # provider fails start-up loudly instead of silently disappearing.
        registry.autodiscover()
