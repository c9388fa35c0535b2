"""What an integration needs from the apps above it to reach its provider.

``integrations`` sits below ``credentials`` and ``ratelimit`` (docs/architecture.md), yet an
adapter needs an authenticated, rate-limited HTTP client and the connection test needs to know
whether the integration has a usable credential. The credentials app provides both at start-up
(``CredentialsConfig.ready`` calls :func:`install`), the way an authentication backend plugs
into ``django.contrib.auth``: imports point down, the behaviour is plugged in from above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from castiel.http import OutboundClient


@dataclass(frozen=True)
class CredentialProblem:
    """Why an integration cannot make an authenticated call now (code, plain-words message)."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class Connections(Protocol):
    def client_for(
        self, integration, *, base_url: str | None = None, **kwargs: Any
    ) -> OutboundClient: ...

    def credential_problem(self, integration) -> CredentialProblem | None: ...


_installed: Connections | None = None


def install(connections: Connections) -> None:
    global _installed
    _installed = connections


def _connections() -> Connections:
    if _installed is None:
        raise ImproperlyConfigured(
            "no connection provider installed: 'credentials' must be in INSTALLED_APPS"
        )
    return _installed


def client_for(integration, *, base_url: str | None = None, **kwargs: Any) -> OutboundClient:
    """The integration's outbound client: its credential, its rate-limit gate, the SSRF guard."""
    return _connections().client_for(integration, base_url=base_url, **kwargs)


def credential_problem(integration) -> CredentialProblem | None:
    """None when the integration has a usable credential; else what is wrong, in plain words."""
    return _connections().credential_problem(integration)
