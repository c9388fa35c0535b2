"""CPU time per process group, from /proc: where a request's cost lands (the web workers,
PostgreSQL, Redis, the load generator). Read before and after a load run; the difference
divided by the requests is CPU-ms per request per group. Linux only; processes that exit
during the run are not counted (gunicorn workers and PostgreSQL backends stay)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _group(pid: str, servers: dict[bytes, str]) -> str | None:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        if name.startswith("postgres"):
            return "postgres"
        if name.startswith("redis-server"):
            return "redis"
        if name == "wrk":
            return "wrk"
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"gunicorn" not in command:
        return None
    for bind, group in servers.items():
        if bind in command:
            return group
    return "web"


def snapshot(servers: dict[bytes, str] | None = None) -> dict[str, float]:
    """CPU seconds used so far by each group's live processes. gunicorn processes are ``web``
    unless ``servers`` names the group of the one whose command line holds a given bind
    address (``{b"127.0.0.1:8001": "web_b"}``: two servers compared in one run)."""
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        group = _group(entry, servers or {})
        if group is None:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of stat (1-based), 12 and 13 after the name.
        totals[group] = totals.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return totals


def per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """CPU-ms per request per group between two snapshots."""
    if not requests:
        return {}
    return {
        group: round((after.get(group, 0.0) - before.get(group, 0.0)) * 1000 / requests, 3)
        for group in sorted(set(before) | set(after))
    }
