"""Each level is enforced on its own, atomically, on every backend (Redis, database, local).

These decisions need no clock control: limits are sized so that the windows (60 s) do not
move during a test.
"""

from __future__ import annotations

from ratelimit.backends.base import Adjustment
from ratelimit.policy import OPERATION, TENANT, Limit, Policy
from tests.ratelimit.conftest import new_id, policy, subject


def admit(backend, subj, pol, n, cost=1):
    return [backend.acquire(subj, pol, cost).allowed for _ in range(n)]


def used(backend, tenant, integration, pol, operations=("fetch", "update")):
    from tests.ratelimit.test_levels import _specs

    usage = backend.usage(
        tenant, integration, _specs(backend, tenant, integration, pol, operations)
    )
    return {(lvl.level, lvl.operation): lvl.used for lvl in usage.levels}


def _specs(backend, tenant, integration, pol, operations):
    from ratelimit.backends.base import LevelSpec

    keys = backend.keys
    specs = [
        (LevelSpec("tenant", keys.tenant(tenant), pol.tenant, False), None),
        (
            LevelSpec("integration", keys.integration(tenant, integration), pol.integration, True),
            None,
        ),
    ]
    for op in operations:
        specs.append(
            (
                LevelSpec(
                    "operation",
                    keys.operation(tenant, integration, op),
                    pol.for_operation(op),
                    True,
                ),
                op,
            )
        )
    return specs


def test_the_tenant_limit_spans_integrations(backend):
    tenant, a, b = new_id(), new_id(), new_id()
    pol = policy(tenant=(4, 60), integration=(10, 60))
    assert admit(backend, subject(tenant, a), pol, 2) == [True, True]
    assert admit(backend, subject(tenant, b), pol, 2) == [True, True]
    refused = backend.acquire(subject(tenant, b), pol)
    assert not refused.allowed and refused.level == TENANT
    assert not backend.acquire(subject(tenant, a), pol).allowed
    # Another tenant is untouched.
    assert backend.acquire(subject(new_id(), a), pol).allowed


def test_operation_limits_are_per_operation(backend):
    tenant, a = new_id(), new_id()
    pol = policy(fetch=(2, 60), update=(3, 60), integration=(100, 60))
    assert admit(backend, subject(tenant, a, "fetch"), pol, 3) == [True, True, False]
    refused = backend.acquire(subject(tenant, a, "fetch"), pol)
    assert refused.level == OPERATION
    assert admit(backend, subject(tenant, a, "update"), pol, 4) == [True, True, True, False]
    # The same operation of another integration has its own counter.
    assert backend.acquire(subject(tenant, new_id(), "fetch"), pol).allowed


def test_the_integration_limit_spans_operations(backend):
    tenant, a = new_id(), new_id()
    pol = policy(integration=(3, 60), fetch=(10, 60), update=(10, 60))
    assert admit(backend, subject(tenant, a, "fetch"), pol, 2) == [True, True]
    assert backend.acquire(subject(tenant, a, "update"), pol).allowed
    refused = backend.acquire(subject(tenant, a, "update"), pol)
    assert not refused.allowed and refused.level == "integration" and refused.reason == "limit"
    assert 0 < refused.wait <= 60 + 60 / 10


def test_a_refusal_consumes_nothing_at_any_level(backend):
    tenant, a, b = new_id(), new_id(), new_id()
    pol = policy(tenant=(5, 60), integration=(3, 60))
    assert admit(backend, subject(tenant, a), pol, 3) == [True, True, True]
    # Refused at the integration level: the tenant and operation counters must not move.
    assert admit(backend, subject(tenant, a), pol, 5) == [False] * 5
    assert used(backend, tenant, a, pol)[("tenant", None)] == 3
    assert used(backend, tenant, a, pol)[("operation", "fetch")] == 3
    assert admit(backend, subject(tenant, b), pol, 3) == [True, True, False]


def test_cost_counts_at_every_level(backend):
    tenant, a = new_id(), new_id()
    pol = policy(tenant=(10, 60), integration=(10, 60), fetch=(10, 60))
    assert backend.acquire(subject(tenant, a), pol, cost=7).allowed
    assert not backend.acquire(subject(tenant, a), pol, cost=4).allowed
    assert backend.acquire(subject(tenant, a), pol, cost=3).allowed
    assert backend.acquire(subject(tenant, a), pol, cost=11).outcome == "reject"
    assert used(backend, tenant, a, pol) == {
        ("tenant", None): 10,
        ("integration", None): 10,
        ("operation", "fetch"): 10,
        ("operation", "update"): 0,
    }


def test_provider_multiplier_scales_integration_and_operation_levels_not_the_tenant(backend):
    tenant, a = new_id(), new_id()
    pol = policy(tenant=(100, 60), integration=(10, 60), fetch=(100, 60))
    backend.adjust(tenant, a, Adjustment(scale=0.5), ttl=60)
    assert admit(backend, subject(tenant, a), pol, 6) == [True] * 5 + [False]
    pol_tight_op = Policy(
        tenant=Limit(100, 60),
        integration=Limit(100, 60),
        operations={"fetch": Limit(4, 60)},
        default_operation=Limit(4, 60),
    )
    b = new_id()
    backend.adjust(tenant, b, Adjustment(scale=0.5), ttl=60)
    assert admit(backend, subject(tenant, b), pol_tight_op, 3) == [True, True, False]
    usage = backend.usage(tenant, a, _specs(backend, tenant, a, pol, ["fetch"]))
    assert usage.state.multiplier == 0.5
    assert [lvl.effective_limit for lvl in usage.levels] == [100, 5, 50]


def test_a_provider_block_stops_the_integration_until_it_ends(backend):
    tenant, a = new_id(), new_id()
    pol = policy()
    state = backend.adjust(tenant, a, Adjustment(block=30), ttl=60)
    assert state.blocked_until is not None
    refused = backend.acquire(subject(tenant, a, "update"), pol)
    assert not refused.allowed and refused.reason == "blocked"
    assert 29 < refused.wait <= 30
    # Other integrations of the tenant are not blocked.
    assert backend.acquire(subject(tenant, new_id()), pol).allowed


def test_recovery_brings_the_multiplier_back_to_one(backend):
    tenant, a = new_id(), new_id()
    assert backend.adjust(tenant, a, Adjustment(scale=0.5), ttl=60).multiplier == 0.5
    state = None
    for _ in range(5):
        state = backend.adjust(tenant, a, Adjustment(step=0.1), ttl=60)
    assert state.multiplier == 1.0
    # The multiplier never drops below its floor, however often the provider complains.
    for _ in range(20):
        state = backend.adjust(tenant, a, Adjustment(scale=0.5, minimum=0.05), ttl=60)
    assert state.multiplier == 0.05
