"""Build the outbound client for one integration: its credential and its rate-limit gate.

Adapters get their HTTP client here and nowhere else, so auth, limits, retries, metrics and
redaction are applied the same way for every provider.
"""

from __future__ import annotations

from castiel.http import OutboundClient
from credentials.auth import auth_for
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
