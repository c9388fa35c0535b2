"""Reads: the policy that applies to an integration, and its current usage."""

from __future__ import annotations

import threading
import time

from django.conf import settings

from ratelimit.backends.base import Usage
from ratelimit.catalogue import integration_limit_for
from ratelimit.limiter import get_limiter
from ratelimit.policy import (
    INTEGRATION,
    OPERATION,
    STANDARD_OPERATIONS,
    TENANT,
    Limit,
    Policy,
    within,
)

# integration id -> (expires at monotonic, tenant id, policy): resolving overrides is a query,
# and the gate asks before every request. Overrides saved in this process clear it at once
# (signals.py); other processes see them within CASTIEL_RATELIMIT_POLICY_CACHE_SECONDS.
_cache: dict[str, tuple[float, str, Policy]] = {}
_cache_lock = threading.Lock()


def default_policy(integration) -> Policy:
    catalogue = integration_limit_for(integration.provider, integration.config)
    per_minute = settings.CASTIEL_RATELIMIT_OPERATION_LIMITS
    operations = {op: Limit(limit, 60.0, "default (settings)") for op, limit in per_minute.items()}
    return Policy(
        tenant=Limit(
            settings.CASTIEL_RATELIMIT_TENANT_LIMIT,
            settings.CASTIEL_RATELIMIT_TENANT_WINDOW,
            "default (settings)",
        ),
        integration=Limit(catalogue.limit, catalogue.window, f"catalogue: {catalogue.source}"),
        operations=operations,
        default_operation=operations.get("fetch"),
    )


def resolve_policy(integration) -> Policy:
    """Defaults with the tenant's overrides applied (integration-specific ones win)."""
    from ratelimit.models import RateLimitOverride

    policy = default_policy(integration)
    overrides = sorted(
        RateLimitOverride.objects.filter(tenant_id=integration.tenant_id).filter(
            integration__isnull=True
        )
        | RateLimitOverride.objects.filter(integration_id=integration.pk),
        # tenant-wide first, so integration-specific ones are applied last and win
        key=lambda o: o.integration_id is not None,
    )
    tenant, own, operations = policy.tenant, policy.integration, dict(policy.operations)
    for override in overrides:
        scope = "integration" if override.integration_id else "tenant"
        limit = Limit(override.limit, override.window_seconds, f"override ({scope})")
        if override.set_by == RateLimitOverride.SetBy.TENANT:
            # A tenant's own override only ever lowers: the tenant level below the default
            # (it protects the other tenants), the others below the provider's documented
            # limit. The API refuses anything else; this holds for rows saved before that
            # check, and for an integration whose documented limit dropped since.
            bound = policy.tenant if override.level == TENANT else policy.integration
            if not within(limit, bound):
                continue
        if override.level == TENANT:
            tenant = limit
        elif override.level == INTEGRATION:
            own = limit
        elif override.level == OPERATION:
            operations[override.operation] = limit
    return Policy(
        tenant=tenant,
        integration=own,
        operations=operations,
        default_operation=operations.get("fetch"),
    )


def policy_for(integration) -> Policy:
    key = str(integration.pk)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[2]
    policy = resolve_policy(integration)
    with _cache_lock:
        _cache[key] = (
            now + settings.CASTIEL_RATELIMIT_POLICY_CACHE_SECONDS,
            str(integration.tenant_id),
            policy,
        )
    return policy


def forget_policies(*, tenant_id=None) -> None:
    """Drop cached policies (of one tenant, or all)."""
    with _cache_lock:
        if tenant_id is None:
            _cache.clear()
            return
        for key in [k for k, v in _cache.items() if v[1] == str(tenant_id)]:
            del _cache[key]


def operations_of(integration, policy: Policy) -> list[str]:
    named = [op for op in policy.operations if op not in STANDARD_OPERATIONS]
    return [*STANDARD_OPERATIONS, *sorted(named)]


def usage_for(integration) -> tuple[Policy, Usage]:
    """The integration's limits and how much of each is used right now."""
    policy = resolve_policy(integration)
    usage = get_limiter().usage(
        str(integration.tenant_id),
        str(integration.pk),
        policy,
        operations_of(integration, policy),
    )
    return policy, usage
