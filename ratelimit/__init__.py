"""Multi-level rate limiting shared by every process (docs/ratelimit.md).

Before each outbound request the gate (:mod:`ratelimit.gate`) asks the limiter to
admit it at three levels at once — the integration (the provider's own limit), the operation
(fetch / create / update / delete) and the tenant (fairness between tenants) — and after it,
feeds the provider's rate-limit headers back so the limits adapt.
"""
