"""The receiver's limits: per registration and per tenant, and how many rejected or duplicate
deliveries a registration may write to the audit each minute (ratelimit.fixed_window).

If the cache is down nothing is limited: an outage of a protection must not turn into
rejected deliveries.
"""

from __future__ import annotations

from django.conf import settings

from ratelimit.fixed_window import Decision, hit


def check(snapshot, *, now: float | None = None) -> Decision:
    """Count one delivery against the registration's and the tenant's limits."""
    reg_limit = snapshot.rate_limit_per_minute
    if reg_limit is None:
        reg_limit = settings.CASTIEL_WEBHOOK_RATE_LIMIT_PER_MINUTE
    return hit(
        [
            (f"webhooks:rl:r:{snapshot.id}", reg_limit),
            (
                f"webhooks:rl:t:{snapshot.tenant_id}",
                settings.CASTIEL_WEBHOOK_TENANT_RATE_LIMIT_PER_MINUTE,
            ),
        ],
        now=now,
    )


def noise_allowed(snapshot, *, now: float | None = None) -> bool:
    """Whether another rejected/duplicate delivery may be written to the audit this minute."""
    return hit(
        [(f"webhooks:noise:{snapshot.id}", settings.CASTIEL_WEBHOOK_NOISE_AUDIT_PER_MINUTE)],
        now=now,
    ).allowed
