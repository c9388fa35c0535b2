"""How an integration's credential is applied to outbound requests.

``auth_for(integration)`` returns a ``requests.auth.AuthBase`` (optionally with
``on_unauthorized(response) -> bool`` for refresh-and-retry and ``send_kwargs`` such as a
client certificate), or None when the integration has no credential.
"""

from __future__ import annotations


def auth_for(integration):
    return None  # replaced by the credentials implementation
