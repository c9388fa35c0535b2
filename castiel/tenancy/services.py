"""Writes for tenants and API keys (HackSoft style: keyword-only, one job each)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from castiel.db import raw_sql
from castiel.tenancy.models import ApiKey, Tenant

KEY_PREFIX = "cst"
_LAST_USED_GRANULARITY = timedelta(minutes=1)


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def tenant_create(*, name: str, slug: str | None = None) -> Tenant:
    name = name.strip()
    if not name:
        raise ValueError("tenant name must not be empty")
    base = slug or slugify(name)[:90] or "tenant"
    candidate, n = base, 1
    while Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Tenant.objects.create(name=name, slug=candidate)


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str = "default") -> tuple[ApiKey, str]:
    """Create a key; the raw key is returned once and never stored."""
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=_digest(raw))
    return key, raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key`` (with an active tenant), or None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    # Every API request comes through here: the two reads are SQL written once per process
    # (castiel.db.raw_sql), not a joined query compiled per request (docs/benchmarks.md).
    key = raw_sql.first(
        ApiKey, raw_sql.select(ApiKey, "{prefix} = %s AND {revoked_at} IS NULL"), [parts[1]]
    )
    if key is None or not hmac.compare_digest(key.key_hash, _digest(raw_key)):
        return None
    tenant = raw_sql.first(
        Tenant, raw_sql.select(Tenant, "{id} = %s"), [raw_sql.param(Tenant, "id", key.tenant_id)]
    )
    if tenant is None or not tenant.is_active:
        return None
    key.tenant = tenant
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_GRANULARITY:
        # Bounded write amplification: at most one update per key per minute.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
