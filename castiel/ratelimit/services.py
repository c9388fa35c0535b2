"""The limiter's public entry point for code that is not an HTTP client (the gate uses it)."""

from __future__ import annotations

from castiel.ratelimit.backends.base import Decision
from castiel.ratelimit.limiter import get_limiter
from castiel.ratelimit.policy import Subject
from castiel.ratelimit.selectors import policy_for


def acquire(tenant, integration, operation: str, cost: int = 1) -> Decision:
    """Ask to send ``cost`` units of ``operation`` for ``integration`` of ``tenant`` now.

    Checks the tenant, integration and operation levels atomically; returns a
    :class:`Decision` whose ``outcome`` is ``allow`` (consumed at every level), ``wait``
    (``decision.wait`` seconds; nothing consumed) or ``reject`` (the cost never fits).
    """
    tenant_id = getattr(tenant, "pk", tenant)
    if str(integration.tenant_id) != str(tenant_id):
        raise ValueError("the integration belongs to another tenant")
    return get_limiter().acquire(
        Subject(str(tenant_id), str(integration.pk), operation),
        policy_for(integration),
        cost,
        provider=integration.provider,
    )


def counters_reset(*, integration) -> None:
    """Forget an integration's tenant counters (operator action after fixing a runaway)."""
    limiter = get_limiter()
    limiter.backend.clear(str(integration.tenant_id))
    if limiter.fallback is not None:
        limiter.fallback.clear(str(integration.tenant_id))
