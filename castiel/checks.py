"""System checks run at start-up (every manage.py command, including qcluster)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_worker_timeouts(app_configs, **kwargs):
    """django-q2 re-delivers a task after ``retry`` seconds: it must exceed ``timeout``."""
    errors = []
    clusters = {"default": settings.Q_CLUSTER}
    clusters.update(settings.Q_CLUSTER.get("ALT_CLUSTERS") or {})
    for name, conf in clusters.items():
        timeout = conf.get("timeout", settings.Q_CLUSTER.get("timeout"))
        retry = conf.get("retry", settings.Q_CLUSTER.get("retry"))
        if timeout is not None and retry is not None and retry <= timeout:
            errors.append(
                Error(
                    f"Q_CLUSTER[{name!r}] retry ({retry}s) must be greater than timeout "
                    f"({timeout}s), or tasks still running are delivered a second time.",
                    hint="Raise Q_RETRY or lower Q_TIMEOUT.",
                    id="castiel.E001",
                )
            )
    return errors


@register(Tags.database, deploy=True)
def check_production_services(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    warnings = []
    if not settings.DB_IS_POSTGRES:
        warnings.append(
            Warning("Production should run on PostgreSQL (set DATABASE_URL).", id="castiel.W001")
        )
    if not settings.REDIS_URL:
        warnings.append(
            Warning(
                "Production should use Redis for the cache, locks and rate limits (set REDIS_URL).",
                id="castiel.W002",
            )
        )
    return warnings


@register("castiel", deploy=True)
def check_recurring_schedules(app_configs, **kwargs):
    """``check --deploy``: the recurring schedules exist in the database (migrate creates
    them); without them scheduled syncs, token refresh and the reapers never run."""
    from django.db import DatabaseError

    from castiel import schedules

    try:
        absent = schedules.missing()
    except DatabaseError as exc:
        return [
            Error(
                f"Cannot read the recurring schedules ({exc.__class__.__name__}).",
                hint=f"Is the database migrated? {schedules.MISSING_HINT}.",
                id="castiel.E002",
            )
        ]
    if not absent:
        return []
    return [
        Error(
            f"Recurring schedule(s) missing: {', '.join(absent)}.",
            hint=schedules.MISSING_HINT.capitalize() + ".",
            id="castiel.E002",
        )
    ]


@register(Tags.security, deploy=True)
def check_metrics_token(app_configs, **kwargs):
    """``check --deploy``: production sets ``CASTIEL_METRICS_TOKEN``; without it /metrics is
    open to anyone and no scraper can read /healthz's details."""
    if not settings.PRODUCTION or settings.CASTIEL_METRICS_TOKEN:
        return []
    return [
        Error(
            "CASTIEL_METRICS_TOKEN is not set: /metrics answers anyone.",
            hint="Set CASTIEL_METRICS_TOKEN to a long random value and give it to the scraper "
            "(Authorization: Bearer <token>).",
            id="castiel.E003",
        )
    ]
