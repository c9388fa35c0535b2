"""System checks for the credentials configuration."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_refresh_schedule(app_configs, **kwargs):
    """The look-ahead must exceed the interval, or tokens expire between two runs."""
    interval = settings.CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES
    lookahead = settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES
    errors = []
    if interval < 1:
        errors.append(
            Error(
                f"CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES is {interval}; it must be at least 1.",
                id="credentials.E002",
            )
        )
    if lookahead <= interval:
        errors.append(
            Error(
                f"CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES ({lookahead}) must be longer than "
                f"CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES ({interval}): a token expiring just "
                "after one run would expire before the next.",
                hint="Raise the look-ahead (default 60) or shorten the interval (default 10).",
                id="credentials.E001",
            )
        )
    if settings.CASTIEL_TOKEN_REFRESH_CONCURRENCY < 1:
        errors.append(
            Error("CASTIEL_TOKEN_REFRESH_CONCURRENCY must be at least 1.", id="credentials.E003")
        )
    return errors
