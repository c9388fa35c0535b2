"""The limiter: ``acquire(tenant, integration, operation, cost)`` over a backend, with the
fall-back to local conservative limits when Redis is unreachable.

Degraded mode: when the Redis backend raises :class:`BackendUnavailable`, the call is
answered by a process-local backend whose every limit is divided by
``CASTIEL_RATELIMIT_EXPECTED_PROCESSES`` (so all processes together stay under the real
limit as long as no more than that many are running), a warning is logged once, the
``castiel_ratelimit_degraded`` gauge goes to 1 and ``/healthz`` reports "degraded". Redis is
tried again every ``CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS``; the first success switches back.
No exception reaches the caller. On the way back each process adds the counts it took
locally to Redis's (one pipelined round trip, ``lua/merge.lua``), so the first window after
an outage knows what was sent during it instead of admitting a full limit again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from castiel import events
from castiel.observability.logging import get_logger
from ratelimit import metrics
from ratelimit.backends.base import (
    AdaptiveState,
    Adjustment,
    BackendUnavailable,
    Decision,
    Keys,
    LevelSpec,
    Usage,
)
from ratelimit.backends.local import LocalBackend
from ratelimit.policy import INTEGRATION, OPERATION, TENANT, Policy, Subject

log = get_logger(__name__)


class Limiter:
    def __init__(
        self,
        backend,
        *,
        fallback: LocalBackend | None = None,
        processes: int = 1,
        retry_seconds: float = 5.0,
        adaptive_ttl: float = 900.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.backend = backend
        self.fallback = fallback
        self.processes = max(1, processes)
        self.retry_seconds = retry_seconds
        self.adaptive_ttl = adaptive_ttl
        self.monotonic = monotonic
        self._degraded_since: float | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._counters: dict[tuple, object] = {}  # labelled children, looked up once

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    @property
    def backend_name(self) -> str:
        return "degraded" if self.degraded else self.backend.name

    # -- the three operations ---------------------------------------------------------------

    def acquire(
        self, subject: Subject, policy: Policy, cost: int = 1, *, provider: str = ""
    ) -> Decision:
        if cost < 1:
            raise ValueError("cost must be at least 1")
        if self._degraded_since is None:
            # The hot path, without closures: every outbound request comes through here.
            try:
                decision = self.backend.acquire(subject, policy, cost)
            except BackendUnavailable as exc:
                if self.fallback is None:
                    raise
                self._enter_degraded(exc)
                decision = self._fallback_acquire(subject, policy, cost)
        else:
            decision = self._call(
                lambda: self.backend.acquire(subject, policy, cost),
                lambda: self._fallback_acquire(subject, policy, cost),
            )
        labels = (
            provider or "unknown",
            decision.level or "none",
            "allowed"
            if decision.allowed
            else ("rejected" if decision.reason == "capacity" else "throttled"),
            self.backend_name,
        )
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = metrics.DECISIONS.labels(*labels)
        counter.inc()
        return decision

    def _fallback_acquire(self, subject: Subject, policy: Policy, cost: int) -> Decision:
        decision = self.fallback.acquire(subject, policy.shared_by(self.processes), cost)
        decision.degraded = True
        return decision

    def adjust(
        self, tenant_id: str, integration_id: str, adjustment: Adjustment, *, notify: bool = True
    ) -> AdaptiveState:
        state = self._call(
            lambda: self.backend.adjust(
                tenant_id, integration_id, adjustment, ttl=self.adaptive_ttl
            ),
            lambda: self.fallback.adjust(
                tenant_id, integration_id, adjustment, ttl=self.adaptive_ttl
            ),
        )
        if notify:
            try:
                _quota_events(tenant_id, integration_id, adjustment, state, ttl=self.adaptive_ttl)
            except Exception:  # telling someone must never fail the request that was limited
                log.warning("ratelimit.quota_event_failed", exc_info=True)
        return state

    def usage(
        self,
        tenant_id: str,
        integration_id: str,
        policy: Policy,
        operations: list[str],
    ) -> Usage:
        keys = Keys(self.backend.keys.prefix)

        def specs(p: Policy) -> list[tuple[LevelSpec, str | None]]:
            result = [
                (LevelSpec(TENANT, keys.tenant(tenant_id), p.tenant, False), None),
                (
                    LevelSpec(
                        INTEGRATION,
                        keys.integration(tenant_id, integration_id),
                        p.integration,
                        True,
                    ),
                    None,
                ),
            ]
            for operation in operations:
                result.append(
                    (
                        LevelSpec(
                            OPERATION,
                            keys.operation(tenant_id, integration_id, operation),
                            p.for_operation(operation),
                            True,
                        ),
                        operation,
                    )
                )
            return result

        usage = self._call(
            lambda: self.backend.usage(tenant_id, integration_id, specs(policy)),
            lambda: self.fallback.usage(
                tenant_id, integration_id, specs(policy.shared_by(self.processes))
            ),
        )
        if self.degraded:
            usage = Usage(levels=usage.levels, state=usage.state, now=usage.now, degraded=True)
        return usage

    # -- degradation --------------------------------------------------------------------------

    def _call(self, primary, fallback):
        if self.fallback is None:
            return primary()
        if self.degraded and self.monotonic() < self._retry_at:
            return fallback()
        try:
            result = primary()
        except BackendUnavailable as exc:
            self._enter_degraded(exc)
            return fallback()
        if self.degraded:
            self._leave_degraded()
        return result

    def _enter_degraded(self, exc: BaseException) -> None:
        metrics.BACKEND_ERRORS.labels(self.backend.name).inc()
        with self._lock:
            first = self._degraded_since is None
            now = self.monotonic()
            if first:
                self._degraded_since = now
            self._retry_at = now + self.retry_seconds
        if first:
            events.emit(
                events.Kind.LIMITER_DEGRADED,
                subject=("ratelimiter", self.backend.name, f"{self.backend.name} backend"),
                message=f"{self.backend.name} unreachable ({exc}); each process limits locally "
                f"to 1/{self.processes} of every limit",
            )
            log.warning(
                "ratelimit.degraded",
                backend=self.backend.name,
                error=str(exc),
                processes=self.processes,
                retry_seconds=self.retry_seconds,
                detail="using local conservative limits (each limit / expected processes)",
            )

    def _leave_degraded(self) -> None:
        with self._lock:
            since = self._degraded_since
            self._degraded_since = None
        if since is not None:
            events.emit(
                events.Kind.LIMITER_RECOVERED,
                subject=("ratelimiter", self.backend.name, f"{self.backend.name} backend"),
            )
            log.warning(
                "ratelimit.recovered",
                backend=self.backend.name,
                degraded_seconds=round(self.monotonic() - since, 1),
            )
            self._copy_back()

    def _copy_back(self) -> None:
        """Add the counts this process took locally during the outage to the backend's."""
        merge = getattr(self.backend, "merge_counts", None)
        if merge is None or self.fallback is None:
            return
        counts = self.fallback.live_counts()
        try:
            merged = merge(counts)
        except BackendUnavailable as exc:  # gone again: the counts stay local for next time
            self._enter_degraded(exc)
            return
        self.fallback.forget(counts)
        if merged:
            log.info("ratelimit.counts_copied", backend=self.backend.name, keys=merged)

    def check_health(self) -> tuple[str, str]:
        try:
            self.backend.ping()
        except BackendUnavailable as exc:
            if self.fallback is not None:
                self._enter_degraded(exc)
            return (
                "degraded",
                f"{self.backend.name} unreachable ({exc}); each process limits locally to "
                f"1/{self.processes} of every limit",
            )
        if self.degraded:
            self._leave_degraded()
        return "ok", self.backend.name


def _quota_events(tenant_id, integration_id, adjustment: Adjustment, state, *, ttl) -> None:
    """A provider block of ``CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS`` or more is an exhausted quota
    (an incident); the first unblocked adjustment after it — in whichever process — restores
    it (a cache flag, deleted once, says one was raised)."""
    from django.core.cache import cache

    flag = f"ratelimit:quota-exhausted:{integration_id}"
    if adjustment.block >= settings.CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS:
        cache.set(flag, 1, timeout=max(int(ttl), int(adjustment.block) + 60))
        events.emit(
            events.Kind.QUOTA_EXHAUSTED,
            tenant=tenant_id,
            integration=integration_id,
            subject=("integration", integration_id),
            message=f"The provider asked to wait {adjustment.block:.0f}s; requests are held.",
            details={"blocked_for_s": round(adjustment.block, 1)},
        )
    elif adjustment.block == 0 and state.blocked_until is None and cache.delete(flag):
        events.emit(
            events.Kind.QUOTA_RESTORED,
            tenant=tenant_id,
            integration=integration_id,
            subject=("integration", integration_id),
        )


# --- the process-wide limiter, built from settings ----------------------------------------------

_limiter: Limiter | None = None
_built_for: tuple | None = None
_build_lock = threading.Lock()


def _fingerprint() -> tuple:
    return (
        settings.CASTIEL_RATELIMIT_BACKEND,
        settings.CASTIEL_RATELIMIT_REDIS_URL,
        settings.CASTIEL_RATELIMIT_REDIS_TIMEOUT,
        settings.CASTIEL_RATELIMIT_BUCKETS,
        settings.CACHE_KEY_PREFIX,
        settings.CASTIEL_RATELIMIT_EXPECTED_PROCESSES,
        settings.CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS,
        settings.CASTIEL_RATELIMIT_ADAPTIVE_TTL,
    )


def build_limiter() -> Limiter:
    kind = settings.CASTIEL_RATELIMIT_BACKEND
    prefix = settings.CACHE_KEY_PREFIX
    buckets = settings.CASTIEL_RATELIMIT_BUCKETS
    common = {
        "retry_seconds": settings.CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS,
        "adaptive_ttl": settings.CASTIEL_RATELIMIT_ADAPTIVE_TTL,
    }
    if kind == "redis":
        from ratelimit.backends.redis import RedisBackend

        backend = RedisBackend(
            settings.CASTIEL_RATELIMIT_REDIS_URL,
            prefix=prefix,
            buckets=buckets,
            timeout=settings.CASTIEL_RATELIMIT_REDIS_TIMEOUT,
        )
        return Limiter(
            backend,
            fallback=LocalBackend(prefix=prefix, buckets=buckets),
            processes=settings.CASTIEL_RATELIMIT_EXPECTED_PROCESSES,
            **common,
        )
    if kind == "database":
        from ratelimit.backends.database import DatabaseBackend

        return Limiter(DatabaseBackend(prefix=prefix, buckets=buckets), **common)
    return Limiter(LocalBackend(prefix=prefix, buckets=buckets), **common)


def get_limiter() -> Limiter:
    """The limiter of this process (rebuilt when its settings change, e.g. in tests)."""
    global _limiter, _built_for
    fingerprint = _fingerprint()
    if _limiter is None or _built_for != fingerprint:
        with _build_lock:
            if _limiter is None or _built_for != fingerprint:
                _limiter, _built_for = build_limiter(), fingerprint
    return _limiter


def health_check() -> tuple[str, str]:
    return get_limiter().check_health()


def degraded_gauge():
    """Scrape-time ``castiel_ratelimit_degraded``: 1 while the limiter's Redis is unreachable.

    Computed when scraped (a ping with the limiter's short timeout) rather than kept in a
    multiprocess gauge, whose files outlive dead processes and would report a recovered outage
    forever. Which processes decided locally is in ``castiel_ratelimit_decisions_total
    {backend="degraded"}`` and ``castiel_ratelimit_backend_errors_total``.
    """
    status, _detail = get_limiter().check_health()
    yield GaugeMetricFamily(
        "castiel_ratelimit_degraded",
        "1 while the rate limiter runs on local conservative limits (Redis unreachable)",
        value=1 if status == "degraded" else 0,
    )
