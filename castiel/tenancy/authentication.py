"""DRF authentication with ``Authorization: Bearer <tenant api key>``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
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
            _count_failure(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return TenantPrincipal(tenant=key.tenant, api_key=key), key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="castiel"'


def _count_failure(request) -> None:
    """Count a failed key per client address in a fixed window (the shared cache: Redis in
    production, the database cache in the embedded profile); past the bound, the failure is
    answered 429 with ``Retry-After`` until the window ends.

    Only failures are counted, after the key was checked: a valid key is never slowed, even
    from an address that is over its bound (a misconfigured client behind the same NAT)."""
    limit = settings.CASTIEL_API_AUTH_FAILURE_LIMIT
    window = settings.CASTIEL_API_AUTH_FAILURE_WINDOW
    if limit <= 0 or window <= 0:
        return
    address = (request.META.get("REMOTE_ADDR") or "unknown")[:64]
    now = time.time()
    bucket = int(now // window)
    key = f"castiel:apikey-failures:{address}:{bucket}"
    cache.add(key, 0, timeout=window + 5)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        failures = 1
    if failures > limit:
        raise exceptions.Throttled(
            wait=max(1, int((bucket + 1) * window - now + 0.999)),
            detail="Too many failed API-key authentications from this address.",
        )
