"""Task functions the worker tests queue (importable by a real qcluster subprocess)."""

from castiel.observability.logging import get_logger

log = get_logger("tests.tasks")


def record(marker: str) -> str:
    log.info("test.marker", marker=marker)
    return marker
