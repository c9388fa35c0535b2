"""The limiter's public entry point for code that is not an HTTP client (the gate uses it)."""

from __future__ import annotations

from ratelimit.backends.base import Decision
from ratelimit.limiter import get_limiter
from ratelimit.policy import TENANT, Limit, Subject, within
from ratelimit.selectors import default_policy, policy_for


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


# -- overrides a tenant sets through the API -------------------------------------------------


class OverrideRefused(Exception):
    """A tenant may not set (or change, or delete) this override: ``code`` is stable, and
    ``status`` is 403 for what only an operator may do, 400 for a limit that is not lower."""

    def __init__(self, message: str, *, code: str, status: int, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details or {}


def override_check_tenant_change(*, override) -> None:
    """May the tenant change or delete ``override`` through the API?"""
    from ratelimit.models import RateLimitOverride

    if override.level == TENANT:
        raise tenant_level_refused()
    if override.set_by == RateLimitOverride.SetBy.OPERATOR:
        raise OverrideRefused(
            "An operator set this override: it is changed in the admin, not through the API.",
            code="operator_override",
            status=403,
        )


def override_check_tenant_limit(
    *, tenant, level: str, integration, limit: int, window_seconds: float
) -> None:
    """May the tenant set this limit through the API? Never at the tenant level (it protects
    the other tenants); at the other levels only at or below the provider's documented limit
    — of its integration, or of every integration of the tenant for a tenant-wide one."""
    from integrations.models import Integration

    if level == TENANT:
        raise tenant_level_refused()
    wanted = Limit(limit, window_seconds)
    integrations = (
        [integration]
        if integration is not None
        else Integration.objects.filter(tenant=tenant).order_by("created_at", "pk")
    )
    for each in integrations:
        documented = default_policy(each).integration
        if not within(wanted, documented):
            raise OverrideRefused(
                f"{limit} per {window_seconds:g}s is above the documented limit of "
                f"{each.provider} ({documented.limit} per {documented.window:g}s) for "
                f"integration {each.name!r}: through the API a limit can only be lowered.",
                code="limit_above_provider_limit",
                status=400,
                details={
                    "integration": str(each.pk),
                    "provider": each.provider,
                    "provider_limit": {
                        "limit": documented.limit,
                        "window_seconds": float(documented.window),
                    },
                },
            )


def tenant_level_refused() -> OverrideRefused:
    return OverrideRefused(
        "The tenant-level limit protects the other tenants: only an operator sets it, "
        "in the admin.",
        code="tenant_limit_operator_only",
        status=403,
    )
