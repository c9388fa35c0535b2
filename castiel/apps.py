from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CastielConfig(AppConfig):
    name = "castiel"
    verbose_name = "Castiel"

    def ready(self):
        from django.contrib import admin

        from castiel import checks  # noqa: F401  (registers system checks)

        admin.site.site_header = "Castiel operations"
        admin.site.site_title = "Castiel"
        admin.site.index_title = "Integrations, sync and webhooks"
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="castiel-schedules")


def _ensure_schedules(sender, using="default", **kwargs):
    from castiel.schedules import ensure_schedules

    ensure_schedules()
