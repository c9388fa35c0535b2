from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "castiel.tenancy"
    label = "tenancy"
    verbose_name = "Tenants"

    def ready(self):
        from castiel.tenancy import schema  # noqa: F401  (registers the OpenAPI extension)
