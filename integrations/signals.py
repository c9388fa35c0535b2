"""Signals integrations sends for the apps above it (which it must not import)."""

from django.dispatch import Signal

# An integration was resumed (sent after commit): changes held while it was paused are due.
integration_resumed = Signal()
