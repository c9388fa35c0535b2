"""django-q2 entry points (thin: each calls one service)."""

from __future__ import annotations


def run_inbound(task_id: str, token: str, trigger: str = "schedule"):
    from syncing.inbound.worker import run_inbound as run

    return run(task_id, token, trigger)


def run_inbound_batch(token: str, trigger: str = "schedule", slot: int = 0, slots: int = 1):
    from syncing.inbound.worker import run_claimed

    return run_claimed(token, trigger, slot, slots)


def scheduler_tick():
    from syncing.inbound.scheduler import tick

    return tick()


def reap():
    from syncing.inbound.reaper import reap as reap_expired

    return reap_expired()


def dispatch_outbound():
    from syncing.outbound.dispatch import dispatch

    return dispatch()


def push_outbound_batch(token: str):
    from syncing.outbound.push import push_batch

    return push_batch(token)


def outbound_tick():
    from syncing.outbound.dispatch import tick

    return tick()


def prune_record_history():
    from syncing.records.history import prune

    return prune()


def purge_integration_records(tenant_id: str, integration_id: str):
    from syncing.records.cascade import purge

    return purge(tenant_id, integration_id)
