"""Credential factories and the isolation makers for the credentials API."""

from __future__ import annotations

from credentials.models import Credential, TokenRefreshAudit
from credentials.services import credential_create
from tests.factories import IntegrationFactory, isolation_maker


def make_api_key_credential(integration, *, value: str = "isolation-api-key-value") -> Credential:
    return credential_create(
        integration=integration, type="api_key", secret={"api_key": value}, settings={}
    )


@isolation_maker(Credential)
def make_credential(tenant):
    return make_api_key_credential(IntegrationFactory(tenant=tenant))


@isolation_maker(TokenRefreshAudit)
def make_audit(tenant):
    credential = make_credential(tenant)
    return TokenRefreshAudit.objects.create(
        credential=credential, trigger="manual", outcome="skipped", message="isolation"
    )
