"""django-q2 entry points (thin: each calls one service)."""

from __future__ import annotations


def run_inbound(task_id: str, token: str, trigger: str = "schedule"):
    from syncing.inbound import run_inbound as run

    return run(task_id, token, trigger)


def scheduler_tick():
    from syncing.scheduler import tick

    return tick()


def reap():
    from syncing.reaper import reap as reap_expired

    return reap_expired()
