"""Build the outbound client for one integration: its credential and its rate-limit gate.

Adapters get their HTTP client here and nowhere else (through ``integrations.connections``,
installed by ``CredentialsConfig.ready``), so auth, limits, retries, metrics and redaction are
applied the same way for every provider.
"""

from __future__ import annotations

from castiel.http import OutboundClient
from credentials.auth import auth_for, live_credential_for
from integrations.connections import CredentialProblem
from ratelimit.gate import gate_for


def client_for(integration, *, base_url: str | None = None, **kwargs) -> OutboundClient:
    config = integration.config or {}
    return OutboundClient(
        provider=integration.provider,
        base_url=base_url if base_url is not None else config.get("base_url", ""),
        auth=auth_for(integration),
        gate=gate_for(integration),
        **kwargs,
    )


def credential_problem(integration) -> CredentialProblem | None:
    credential = live_credential_for(integration)
    if credential is None:
        auth_types = ", ".join(integration.provider_info.auth_types)
        return CredentialProblem(
            "no_credential",
            f"{integration.name!r} has no credential: add one ({auth_types}) "
            "or connect with OAuth2.",
        )
    if not credential.is_usable:
        return CredentialProblem(
            "credential_unavailable",
            f"The credential is {credential.status}: "
            f"{credential.status_reason or 'connect the integration again'}.",
            {"credential_status": credential.status},
        )
    return None
