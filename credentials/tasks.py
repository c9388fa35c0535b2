"""django-q2 entry points (thin: the work is in credentials.maintenance / refresh)."""

from __future__ import annotations

from credentials.maintenance import refresh_due
from credentials.models import TokenRefreshAudit
from credentials.refresh import credential_refresh


def refresh_due_credentials() -> dict:
    return refresh_due()


def refresh_credential(credential_id: str) -> str:
    return credential_refresh(
        credential_id=credential_id, trigger=TokenRefreshAudit.Trigger.MANUAL, force=True
    ).outcome
