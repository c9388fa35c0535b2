"""The error raised for a bad environment, printed as one line by ``manage.py``."""

from django.core.exceptions import ImproperlyConfigured


class ConfigurationError(ImproperlyConfigured):
    """A setting from the environment is missing or invalid."""
