"""DRF authentication with ``Authorization: Bearer <tenant api key>``."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from castiel.tenancy.models import ApiKey, Tenant
from castiel.tenancy.services import api_key_authenticate


@dataclass(frozen=True)
class TenantPrincipal:
    """``request.user`` for API calls: the tenant behind the key, not a Django user."""

    tenant: Tenant
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def pk(self):
        return None

    @property
    def username(self) -> str:
        return f"tenant:{self.tenant.slug}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <api key>'."
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key = api_key_authenticate(raw_key=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return TenantPrincipal(tenant=key.tenant, api_key=key), key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="castiel"'
