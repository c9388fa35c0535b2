from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"

    def ready(self):
        from castiel.observability.health import OK, register_check
        from credentials import checks, clients, metrics  # noqa: F401  (checks, collectors)
        from integrations import connections

        # Adapters get their authenticated, rate-limited client from here.
        connections.install(clients)

        def secrets_health():
            from credentials.secrets import secret_store

            return OK, secret_store().health()

        register_check("secrets", secrets_health)
