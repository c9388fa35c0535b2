"""Run one callable in several threads at the same moment (races against a real database)."""

from __future__ import annotations

import threading

from django.db import connection


def in_threads(n: int, target) -> list:
    """``target()`` in ``n`` threads released together; their results (any order). Each
    thread closes its own database connection; an exception in any thread fails the test."""
    results, errors = [], []
    barrier = threading.Barrier(n)

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results
