"""Prometheus metrics of the limiter (shared by every process, see observability.metrics)."""

from prometheus_client import Counter, Histogram

# Every limiter decision: outcome allowed / throttled (a window is full or the provider asked
# to wait) / rejected (cost above the limit); level = the level that said no ("none" when
# allowed); backend = redis / database / local / degraded.
DECISIONS = Counter(
    "castiel_ratelimit_decisions_total",
    "Rate-limiter decisions",
    ["provider", "level", "outcome", "backend"],
)
# What the gate did with a request: allowed at once, waited in-process, deferred (rescheduled),
# refused (risky operation while throttled), rejected (can never fit); level = the level that
# made it wait or said no ("none" when allowed at once).
GATE = Counter(
    "castiel_ratelimit_requests_total",
    "Outbound requests through the rate-limit gate",
    ["provider", "operation", "level", "outcome"],
)
WAIT_SECONDS = Histogram(
    "castiel_ratelimit_wait_seconds",
    "Time spent waiting in-process for the rate limiter",
    ["provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
ADJUSTMENTS = Counter(
    "castiel_ratelimit_adjustments_total",
    "Adaptive changes from provider feedback",
    ["provider", "kind"],
)
BACKEND_ERRORS = Counter(
    "castiel_ratelimit_backend_errors_total",
    "Rate-limiter backend failures (each one is answered by the local fallback)",
    ["backend"],
)
