"""A scratch PostgreSQL database with Castiel's schema, for the sync benchmarks.

The benchmarks configure Django in-process against a database created for the run (and
dropped afterwards): ``castiel_bench_<pid>`` on ``BENCH_POSTGRES_URL`` (default
``postgres://postgres:postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
import resource
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres"
)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def scratch_postgres(**env: str):
    import psycopg

    name = f"castiel_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    data = Path(tempfile.mkdtemp(prefix="castiel-bench-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "castiel.settings",
            "DATABASE_URL": _with_db(ADMIN_URL, name),
            "CASTIEL_DATA_DIR": str(data),
            "PROMETHEUS_MULTIPROC_DIR": str(data / "metrics"),
            "LOG_LEVEL": "WARNING",
            "DEBUG": "0",  # DEBUG keeps every SQL statement in memory
            "CASTIEL_QUEUE_NAME": f"castiel-bench-{os.getpid()}",
            "CACHE_KEY_PREFIX": f"castiel-bench-{os.getpid()}",
            **env,
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
