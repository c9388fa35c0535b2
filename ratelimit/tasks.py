"""django-q2 entry points (thin: the work is in the backends)."""

from ratelimit.backends.database import DatabaseBackend
from ratelimit.limiter import get_limiter


def delete_expired_counters() -> int:
    backend = get_limiter().backend
    if isinstance(backend, DatabaseBackend):
        return backend.delete_expired()
    return 0  # Redis expires its keys itself; local counters die with the process
