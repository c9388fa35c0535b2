from django.conf import settings

from castiel.schedules import declare

declare(
    "credentials.refresh_due",
    "credentials.tasks.refresh_due_credentials",
    minutes=max(1, settings.CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES),
    kind="maintenance",
)
