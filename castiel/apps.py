from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class CastielConfig(AppConfig):
    name = "castiel"
    verbose_name = "Castiel"

    def ready(self):
        from django.contrib import admin

        from castiel import checks  # noqa: F401  (registers system checks)
        from castiel.observability.metrics import register_scrape_collector
        from castiel.queue import depth_metric

        register_scrape_collector("queue_depth", depth_metric)

        admin.site.site_header = "Castiel operations"
        admin.site.site_title = "Castiel"
        admin.site.index_title = "Integrations, sync and webhooks"
        # Django sends post_migrate once per app *with a models module*; Castiel's package has
        # none, so a receiver bound to it never ran. The schedule rows belong to django_q,
        # whose signal comes once its table exists.
        post_migrate.connect(
            _ensure_schedules,
            sender=apps.get_app_config("django_q"),
            dispatch_uid="castiel-schedules",
        )


def _ensure_schedules(sender, using="default", **kwargs):
    from castiel.schedules import ensure_schedules

    ensure_schedules(using=using)
