from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"

    def ready(self):
        from credentials import checks, metrics  # noqa: F401  (register checks and collectors)
