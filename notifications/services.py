"""Writes: channels (with their secrets), subscriptions, incidents by hand, replays, tests.

Channel secrets (a Slack or Teams webhook URL, a signing secret) are write-only: they go to
the secret store as one JSON document per channel (``notify-<channel id hex>``, a new version
on every change) and are never returned — except a signing secret Castiel generated, shown
once in the answer that created it. Everything is validated before anything is stored, so a
refused input leaves nothing behind (no row, no secret version).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict

from django.core.exceptions import ValidationError
from django.db import transaction

from castiel.observability.logging import get_logger
from credentials.secrets import SecretNotFoundError, secret_store
from notifications import channels, subscriptions
from notifications.models import Channel, Subscription

log = get_logger(__name__)

CHANNEL_FIELDS = ("name", "enabled", "rate_limit_per_minute")


def secret_name_for(channel_id) -> str:
    return f"notify-{uuid.UUID(str(channel_id)).hex}"


# -- channel secrets -----------------------------------------------------------------------------

_cache: OrderedDict[tuple[str, str], dict] = OrderedDict()
_lock = threading.Lock()


def channel_secrets(channel: Channel) -> dict:
    """The channel's secret document (cached per immutable version)."""
    if not channel.secret_version:
        return {}
    key = (channel.secret_name, channel.secret_version)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        value = json.loads(secret_store().get(*key).value)
    except SecretNotFoundError:
        value = {}
    with _lock:
        _cache[key] = value
        while len(_cache) > 1024:
            _cache.popitem(last=False)
    return value


def _store_secrets(channel: Channel, document: dict) -> str:
    version = secret_store().put(
        channel.secret_name,
        json.dumps(document, separators=(",", ":")),
        tags={"kind": "notification-channel", "channel": str(channel.pk)},
    )
    return version.version


# -- channels ------------------------------------------------------------------------------------


def _check_common(name, type_, tenant, channel=None) -> dict:
    errors = {}
    if type_ not in channels.TYPES:
        errors["type"] = f"Unknown channel type {type_!r}: one of {', '.join(channels.TYPES)}."
    if not name or not str(name).strip():
        errors["name"] = "A name is required."
    elif len(str(name)) > 200:
        errors["name"] = "At most 200 characters."
    else:
        clash = Channel.objects.filter(tenant=tenant, name=str(name).strip())
        if channel is not None:
            clash = clash.exclude(pk=channel.pk)
        if clash.exists():
            errors["name"] = "Another channel already has this name."
    return errors


def channel_create(*, tenant, name: str, type: str, **data) -> tuple[Channel, str | None]:
    """Create a channel; returns it and the signing secret when Castiel generated one."""
    errors = _check_common(name, type, tenant)
    if "type" in errors:
        raise ValidationError(errors)
    kind = channels.for_type(type)
    public, secret, field_errors = kind.clean(data, channel=None, tenant=tenant)
    errors.update(field_errors)
    errors.update(_rate_error(data))
    if errors:
        raise ValidationError(errors)
    generated = secret.pop("_generated", False)
    channel = Channel(
        id=uuid.uuid4(),
        tenant=tenant,
        name=str(name).strip(),
        type=type,
        enabled=bool(data.get("enabled", True)),
        rate_limit_per_minute=int(data.get("rate_limit_per_minute") or 0),
        url=public.get("url", ""),
        recipients=public.get("recipients", []),
        integration=public.get("integration"),
        conversation=public.get("conversation", ""),
        target_hint=kind.hint(public, secret),
    )
    channel.secret_name = secret_name_for(channel.pk)
    if secret:
        channel.secret_version = _store_secrets(channel, secret)
    try:
        with transaction.atomic():
            channel.save(force_insert=True)
    except Exception:
        if secret:
            secret_store().delete(channel.secret_name)  # nothing half-saved
        raise
    log.info("notifications.channel_created", channel=str(channel.pk), type=type)
    return channel, (secret.get("signing_secret") if generated else None)


def channel_update(*, channel: Channel, **data) -> Channel:
    """Change a channel; a secret field given replaces the stored one, absent keeps it."""
    name = data.get("name", channel.name)
    errors = _check_common(name, channel.type, channel.tenant, channel)
    kind = channels.for_type(channel.type)
    supplied = {k: v for k, v in data.items() if v not in (None, "") or k == "recipients"}
    public, secret, field_errors = kind.clean(supplied, channel=channel, tenant=channel.tenant)
    errors.update(field_errors)
    errors.update(_rate_error(data))
    if errors:
        raise ValidationError(errors)
    secret.pop("_generated", None)
    channel.name = str(name).strip()
    for field in ("enabled", "rate_limit_per_minute"):
        if field in data and data[field] is not None:
            setattr(channel, field, data[field])
    if "url" in public:
        channel.url = public["url"]
    if "recipients" in public:
        channel.recipients = public["recipients"]
    for field in ("integration", "conversation"):
        if field in public:
            setattr(channel, field, public[field])
    if secret:
        document = {**channel_secrets(channel), **secret}
        channel.secret_version = _store_secrets(channel, document)
        channel.target_hint = kind.hint(public or _public(channel), document)
    elif public:
        channel.target_hint = kind.hint(_public(channel), channel_secrets(channel))
    channel.save()
    return channel


def _public(channel: Channel) -> dict:
    return {
        "url": channel.url,
        "recipients": channel.recipients,
        "integration": channel.integration,
        "conversation": channel.conversation,
    }


def _rate_error(data: dict) -> dict:
    value = data.get("rate_limit_per_minute")
    if value in (None, ""):
        return {}
    try:
        number = int(value)
    except (TypeError, ValueError):
        return {"rate_limit_per_minute": "A whole number of messages per minute."}
    if not 0 <= number <= 6000:
        return {"rate_limit_per_minute": "Between 0 (the type's default) and 6000."}
    return {}


def channel_delete(*, channel: Channel) -> None:
    name = channel.secret_name
    channel.delete()
    if name:
        transaction.on_commit(lambda: secret_store().delete(name))


# -- subscriptions -------------------------------------------------------------------------------


def subscription_errors(values: dict, *, tenant) -> dict:
    """Field errors of a subscription (the API serializer and the admin form share these)."""
    from castiel.events import CATALOGUE, Kind

    errors = {}
    tz = values.get("timezone") or "UTC"
    error = subscriptions.timezone_error(tz)
    if error:
        errors["timezone"] = error
    kinds = values.get("event_kinds") or []
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        errors["event_kinds"] = "A list of event kinds."
    else:
        unknown = [k for k in kinds if k not in set(Kind)]
        events = [k for k in kinds if k in set(Kind) and not CATALOGUE[Kind(k)].incident]
        if unknown:
            errors["event_kinds"] = "Unknown event kind(s): " + ", ".join(unknown[:5])
        elif events:
            errors["event_kinds"] = (
                "These are tenant application events, not incidents: subscribe to them with an "
                "event subscription (/api/v1/event-subscriptions/): " + ", ".join(events[:5])
            )
    channel = values.get("channel")
    if channel is not None and channel.tenant_id != (tenant.pk if tenant else None):
        errors["channel"] = (
            "Use a channel of the same tenant."
            if tenant
            else "An operator-wide subscription needs an operator channel."
        )
    mode = values.get("mode") or Subscription.Mode.IMMEDIATE
    every = values.get("digest_every") or Subscription.Every.DAILY
    if mode == Subscription.Mode.DIGEST:
        if (
            every == Subscription.Every.MINUTES
            and not 5 <= int(values.get("digest_minutes") or 0) <= 1440
        ):
            errors["digest_minutes"] = "Between 5 and 1440 minutes."
        if every == Subscription.Every.DAILY and values.get("digest_time") is None:
            errors["digest_time"] = "Daily digests need a time of day (e.g. 09:00)."
    if (values.get("quiet_start") is None) != (values.get("quiet_end") is None):
        errors["quiet_end" if values.get("quiet_start") else "quiet_start"] = (
            "Quiet hours need both a start and an end."
        )
    return errors


def schedule_digest(subscription: Subscription, *, now) -> None:
    """(Re)start the digest clock of a subscription saved in digest mode."""
    if subscription.mode != Subscription.Mode.DIGEST:
        subscription.digest_from = subscription.next_digest_at = None
        return
    if subscription.digest_from is None:
        subscription.digest_from = now
    subscription.next_digest_at = subscriptions.next_digest_at(subscription, now)
