"""The rate-limit gate an outbound client asks before every request.

``gate_for(integration)`` returns an object with ``acquire(operation, cost)`` and
``feedback(response)`` (see ``castiel.http.client.RateLimitGate``).

Behaviour by operation:

* **safe** operations (fetch, create, update — anything not listed in
  ``CASTIEL_RATELIMIT_RISKY_OPERATIONS``) wait: in-process when the limiter's wait fits in
  what is left of ``CASTIEL_RATELIMIT_MAX_INPROCESS_WAIT``, otherwise
  :class:`~ratelimit.errors.RateLimitDeferred` carries ``retry_after`` so the worker
  re-schedules the work — never dropped;
* **risky** operations (delete) are refused with
  :class:`~ratelimit.errors.RateLimitRefused` and a clear reason as soon as they
  cannot go at once: a delete is never sent while the integration is throttled.

After each response ``feedback`` turns the provider's rate-limit headers into an adaptive
change (``ratelimit.adaptive``). Neither method ever sends anything to the provider.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from django.conf import settings

from castiel.http import limit_headers
from castiel.observability.logging import get_logger
from integrations.providers import registry
from ratelimit import adaptive, metrics
from ratelimit.backends.base import Decision
from ratelimit.errors import (
    RateLimitDeferred,
    RateLimitExceedsCapacity,
    RateLimitRefused,
)
from ratelimit.limiter import get_limiter
from ratelimit.policy import INTEGRATION, OPERATION, TENANT, Policy, Subject
from ratelimit.selectors import policy_for

log = get_logger(__name__)


def describe(decision: Decision, policy: Policy, operation: str) -> str:
    """Why a request cannot go now, in words an operator understands."""
    if decision.reason == "blocked":
        return (
            "the provider asked us to stop (Retry-After or an exhausted quota) "
            f"for {decision.wait:.1f}s more"
        )
    limit = {
        TENANT: policy.tenant,
        INTEGRATION: policy.integration,
        OPERATION: policy.for_operation(operation),
    }[decision.level]
    what = {
        TENANT: "the tenant's limit",
        INTEGRATION: "the integration's provider limit",
        OPERATION: f"the {operation!r} operation limit",
    }[decision.level]
    scaled = ""
    if decision.level != TENANT and decision.multiplier < 1:
        scaled = f", reduced to {decision.multiplier:.0%} after provider feedback"
    if decision.reason == "capacity":
        return f"a cost above {what} of {limit.limit} per {limit.window:g}s can never be admitted"
    return (
        f"{what} of {limit.limit} per {limit.window:g}s{scaled} is used up; "
        f"room again in {decision.wait:.1f}s"
    )


class IntegrationGate:
    def __init__(
        self,
        integration,
        *,
        max_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.integration = integration
        self.provider = integration.provider
        self.max_wait = (
            settings.CASTIEL_RATELIMIT_MAX_INPROCESS_WAIT if max_wait is None else max_wait
        )
        self.sleep = sleep
        # The multiplier seen at the last decision: healthy feedback costs no round trip
        # while the limit is whole.
        self._multiplier = 1.0

    def _subject(self, operation: str) -> Subject:
        return Subject(str(self.integration.tenant_id), str(self.integration.pk), operation)

    def acquire(self, operation: str, cost: int = 1) -> None:
        policy = policy_for(self.integration)
        risky = operation in settings.CASTIEL_RATELIMIT_RISKY_OPERATIONS
        limiter = get_limiter()
        started = time.monotonic()
        waited_for: str | None = None  # the level that first made us wait
        while True:
            decision = limiter.acquire(
                self._subject(operation), policy, cost, provider=self.provider
            )
            self._multiplier = decision.multiplier
            if decision.allowed:
                self._count(operation, waited_for, "waited" if waited_for else "allowed")
                if waited_for:
                    metrics.WAIT_SECONDS.labels(self.provider).observe(time.monotonic() - started)
                return
            reason = describe(decision, policy, operation)
            context = {
                "provider": self.provider,
                "integration_id": str(self.integration.pk),
                "operation": operation,
                "level": decision.level,
                "wait_s": round(decision.wait, 3),
            }
            if decision.reason == "capacity":
                self._count(operation, decision.level, "rejected")
                log.warning("ratelimit.rejected", reason=reason, **context)
                raise RateLimitExceedsCapacity(
                    f"{operation} (cost {cost}) rejected: {reason}",
                    retry_after=None,
                    level=decision.level,
                    reason=reason,
                    operation=operation,
                )
            if risky:
                self._count(operation, decision.level, "refused")
                log.warning("ratelimit.refused", reason=reason, **context)
                raise RateLimitRefused(
                    f"{operation} refused while throttled: {reason}",
                    retry_after=decision.wait,
                    level=decision.level,
                    reason=reason,
                    operation=operation,
                )
            left = self.max_wait - (time.monotonic() - started)
            if decision.wait > left:
                self._count(operation, decision.level, "deferred")
                log.info("ratelimit.deferred", reason=reason, **context)
                raise RateLimitDeferred(
                    f"{operation} deferred: {reason}",
                    retry_after=decision.wait,
                    level=decision.level,
                    reason=reason,
                    operation=operation,
                )
            waited_for = waited_for or decision.level
            # A little jitter so processes woken by the same freed bucket do not collide.
            self.sleep(decision.wait + random.uniform(0, 0.01))  # noqa: S311

    def feedback(self, response) -> None:
        try:
            signal = limit_headers.parse_response(response, reader=self._limit_reader())
            adjustment = adaptive.adjustment_for(signal, multiplier=self._multiplier)
            if adjustment is None:
                return
            state = get_limiter().adjust(
                str(self.integration.tenant_id), str(self.integration.pk), adjustment
            )
        except Exception:
            # Feedback is advice: failing to record it must not fail a request that succeeded.
            log.warning("ratelimit.feedback_failed", provider=self.provider, exc_info=True)
            return
        previous, self._multiplier = self._multiplier, state.multiplier
        kind = (
            "rate_limited"
            if signal.rate_limited
            else "block"
            if adjustment.block
            else ("decrease" if state.multiplier < previous else "recover")
        )
        metrics.ADJUSTMENTS.labels(self.provider, kind).inc()
        if kind != "recover":
            log.info(
                "ratelimit.adjusted",
                provider=self.provider,
                integration_id=str(self.integration.pk),
                kind=kind,
                status=response.status_code,
                multiplier=round(state.multiplier, 3),
                blocked_for_s=round(adjustment.block, 1) if adjustment.block else None,
            )

    def _limit_reader(self):
        """The provider's own header reader (its folder's ``limits.py``), if it has one."""
        try:
            return registry.get(self.provider).limit_headers
        except registry.UnknownProvider:
            return None

    def _count(self, operation: str, level: str | None, outcome: str) -> None:
        metrics.GATE.labels(self.provider, operation, level or "none", outcome).inc()


def gate_for(integration):
    return IntegrationGate(integration)
