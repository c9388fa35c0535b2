"""Notification events about an integration's records and pushes that need a human: conflicts
waiting, dead letters (``castiel.events``; the notifications app folds them into incidents).

Raised on transitions only — when conflicts or dead letters appear, and when the last open one
is dealt with — never per record written.
"""

from __future__ import annotations

from castiel.events import Kind, emit
from syncing.models import Conflict, DeadLetter


def conflicts_waiting(tenant_id, integration_id) -> None:
    open_count = Conflict.objects.filter(
        task__integration_id=integration_id, status=Conflict.Status.OPEN
    ).count()
    if not open_count:  # the page's conflicts were all settled by the task's strategy
        return
    emit(
        Kind.CONFLICTS_WAITING,
        tenant=tenant_id,
        integration=integration_id,
        subject=("integration", str(integration_id)),
        message=f"{open_count} conflict(s) wait for a decision",
        details={"open": open_count},
    )


def conflicts_maybe_cleared(tenant_id, integration_id) -> None:
    if not Conflict.objects.filter(
        task__integration_id=integration_id, status=Conflict.Status.OPEN
    ).exists():
        emit(
            Kind.CONFLICTS_CLEARED,
            tenant=tenant_id,
            integration=integration_id,
            subject=("integration", str(integration_id)),
        )


def dead_letter_created(dead_letter: DeadLetter) -> None:
    emit(
        Kind.DEAD_LETTER_CREATED,
        tenant=dead_letter.tenant_id,
        integration=dead_letter.integration_id,
        subject=("integration", str(dead_letter.integration_id)),
        message=f"{dead_letter.operation} of {dead_letter.entity_type} "
        f"{dead_letter.external_id or dead_letter.record_id}: {dead_letter.error_code}",
    )


def dead_letters_maybe_cleared(tenant_id, integration_id) -> None:
    if not DeadLetter.objects.filter(
        integration_id=integration_id, status=DeadLetter.Status.OPEN
    ).exists():
        emit(
            Kind.DEAD_LETTERS_CLEARED,
            tenant=tenant_id,
            integration=integration_id,
            subject=("integration", str(integration_id)),
        )
