"""The rate-limit gate an outbound client asks before every request.

``gate_for(integration)`` returns an object with ``acquire(operation, cost)`` and
``feedback(response)`` (see ``castiel.http.client.RateLimitGate``), or None for no limiting.
"""

from __future__ import annotations


def gate_for(integration):
    return None  # replaced by the rate limiter implementation
