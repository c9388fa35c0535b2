from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"

    def ready(self):
        from castiel.observability.health import OK, register_check
        from credentials import checks, metrics  # noqa: F401  (register checks and collectors)

        def secrets_health():
            from credentials.secrets import secret_store

            return OK, secret_store().health()

        register_check("secrets", secrets_health)
