"""Sandbox writes and reads: accounts, objects, listing with every pagination style, webhooks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from castiel.queue import enqueue
from sandbox import signing
from sandbox.models import SandboxAccount, SandboxDelivery, SandboxObject

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
RESERVED_FIELDS = {"id", "created_at", "updated_at", "deleted", "deleted_at"}


class BadRequest(ValueError):
    pass


class Invalid(ValueError):
    """Validation failed (422), with a message per field."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def validate(collection: str, data) -> None:
    """What the simulated API refuses: a contact whose email has no ``@``."""
    if not isinstance(data, dict):
        return  # _clean answers 400 for that
    if collection == "contacts" and data.get("email") is not None:
        if "@" not in str(data["email"]):
            raise Invalid({"email": "must be an email address"})


# -- accounts ---------------------------------------------------------------------------------


def account_create(*, slug: str, **fields) -> SandboxAccount:
    return SandboxAccount.objects.create(slug=slug, **fields)


def account_configure(*, account: SandboxAccount, **fields) -> SandboxAccount:
    allowed = {
        "faults",
        "rate_limit",
        "rate_window_seconds",
        "webhook_url",
        "webhook_secret",
        "webhook_scheme",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise BadRequest(f"unknown settings: {', '.join(sorted(unknown))}")
    for key, value in fields.items():
        setattr(account, key, value)
    account.save(update_fields=list(fields))
    return account


# -- objects ----------------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def serialize(obj: SandboxObject) -> dict:
    body = {
        **obj.data,
        "id": str(obj.pk),
        "created_at": iso(obj.created_at),
        "updated_at": iso(obj.updated_at),
    }
    if obj.deleted_at is not None:
        body["deleted"] = True
        body["deleted_at"] = iso(obj.deleted_at)
    return body


def _clean(data) -> dict:
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return {k: v for k, v in data.items() if k not in RESERVED_FIELDS}


@transaction.atomic
def object_create(*, account: SandboxAccount, collection: str, data: dict, at=None):
    obj = object_new(account, collection, data, at=at)
    obj.save(force_insert=True)
    emit(account=account, event_type=f"{collection}.created", obj=obj)
    return obj


def object_new(account: SandboxAccount, collection: str, data, at=None) -> SandboxObject:
    """An object not saved yet (:func:`objects_create` saves many at once)."""
    now = at or timezone.now()
    return SandboxObject(
        account=account, collection=collection, data=_clean(data), created_at=now, updated_at=now
    )


@transaction.atomic
def objects_create(*, account: SandboxAccount, objects: list[SandboxObject]) -> None:
    """Save new objects in one INSERT (their ids set on them), each with its webhook."""
    SandboxObject.objects.bulk_create(objects)
    for obj in objects:
        emit(account=account, event_type=f"{obj.collection}.created", obj=obj)


def objects_seed(*, account: SandboxAccount, collection: str, rows: list[dict], at=None) -> int:
    """Bulk-create objects (no webhooks): demo data and big test fixtures."""
    now = at or timezone.now()
    SandboxObject.objects.bulk_create(
        [
            SandboxObject(
                account=account,
                collection=collection,
                data=_clean(row),
                # A microsecond apart: a stable updated-at order, as busy real APIs have.
                created_at=now + timedelta(microseconds=i),
                updated_at=now + timedelta(microseconds=i),
            )
            for i, row in enumerate(rows)
        ],
        batch_size=1000,
    )
    return len(rows)


@transaction.atomic
def object_update(*, obj: SandboxObject, data: dict, replace: bool = False, at=None):
    cleaned = _clean(data)
    obj.data = cleaned if replace else {**obj.data, **cleaned}
    obj.updated_at = at or timezone.now()
    obj.save(update_fields=["data", "updated_at"])
    emit(account=obj.account, event_type=f"{obj.collection}.updated", obj=obj)
    return obj


@transaction.atomic
def object_delete(*, obj: SandboxObject, at=None):
    """Soft delete: the tombstone shows in incremental feeds (``updated_since``)."""
    now = at or timezone.now()
    obj.deleted_at = now
    obj.updated_at = now
    obj.save(update_fields=["deleted_at", "updated_at"])
    emit(account=obj.account, event_type=f"{obj.collection}.deleted", obj=obj)
    return obj


# -- listing ----------------------------------------------------------------------------------


def _int_param(params, name: str, default: int, minimum: int = 0) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < minimum:
        raise BadRequest(f"{name} must be ≥ {minimum}")
    return value


def _encode_cursor(obj: SandboxObject, by_updated: bool) -> str:
    key = {"u": iso(obj.updated_at), "i": obj.pk} if by_updated else {"i": obj.pk}
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> dict:
    try:
        padded = token + "=" * (-len(token) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, dict) or not isinstance(key.get("i"), int):
            raise ValueError
        return key
    except (ValueError, TypeError):
        raise BadRequest("invalid cursor") from None


def list_objects(*, account: SandboxAccount, collection: str, params) -> dict:
    """One page. Styles: ``cursor`` (default), ``page``/``per_page``, ``offset``/``limit``.

    ``updated_since`` (ISO 8601, inclusive) filters and orders by (updated_at, id) and
    includes tombstones, as incremental feeds of real APIs do; ``include_deleted=true`` shows
    tombstones otherwise.
    """
    limit = min(
        _int_param(params, "limit", _int_param(params, "per_page", DEFAULT_LIMIT, 1), 1),
        MAX_LIMIT,
    )
    qs = SandboxObject.objects.filter(account=account, collection=collection)
    since_raw = params.get("updated_since")
    by_updated = bool(since_raw) or params.get("sort") == "updated_at"
    if since_raw:
        try:
            since = datetime.fromisoformat(since_raw.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("updated_since must be an ISO 8601 timestamp") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        qs = qs.filter(updated_at__gte=since)
    elif params.get("include_deleted", "").lower() not in ("1", "true", "yes"):
        qs = qs.filter(deleted_at__isnull=True)
    qs = qs.order_by("updated_at", "id") if by_updated else qs.order_by("id")
    body: dict = {}
    if "page" in params:
        page = _int_param(params, "page", 1, 1)
        total = qs.count()
        rows = list(qs[(page - 1) * limit : page * limit])
        has_more = page * limit < total
        body.update(
            page=page, per_page=limit, total=total, next_page=page + 1 if has_more else None
        )
    elif "offset" in params:
        offset = _int_param(params, "offset", 0, 0)
        total = qs.count()
        rows = list(qs[offset : offset + limit])
        has_more = offset + limit < total
        body.update(offset=offset, limit=limit, total=total)
    else:
        token = params.get("cursor")
        if token:
            key = _decode_cursor(token)
            if by_updated:
                if "u" not in key:
                    raise BadRequest("cursor does not match this ordering")
                after = datetime.fromisoformat(key["u"].replace("Z", "+00:00"))
                qs = qs.filter(updated_at__gte=after).exclude(updated_at=after, id__lte=key["i"])
            else:
                qs = qs.filter(id__gt=key["i"])
        rows = list(qs[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
    body["data"] = [serialize(r) for r in rows]
    body["has_more"] = has_more
    body["next_cursor"] = _encode_cursor(rows[-1], by_updated) if has_more and rows else None
    return body


# -- webhooks ---------------------------------------------------------------------------------


def emit(*, account: SandboxAccount, event_type: str, obj: SandboxObject) -> None:
    """Queue a signed webhook for a change (sent after commit, by a webhooks worker)."""
    if not account.webhook_url:
        return
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created_at": iso(timezone.now()),
            "data": serialize(obj),
        },
        separators=(",", ":"),
    )
    delivery = SandboxDelivery.objects.create(
        account=account,
        event_id=event_id,
        event_type=event_type,
        url=account.webhook_url,
        body=body,
    )
    enqueue("sandbox.tasks.deliver_webhook", delivery.pk, kind="webhooks")


def signed_headers(account: SandboxAccount, delivery: SandboxDelivery) -> dict[str, str]:
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json"}
    if account.webhook_scheme == SandboxAccount.Scheme.GITHUB:
        headers.update(
            signing.github_headers(
                account.webhook_secret, delivery.event_id, delivery.event_type, body
            )
        )
    else:
        headers.update(
            signing.standard_headers(
                account.webhook_secret, delivery.event_id, int(time.time()), body
            )
        )
    return headers


def deliver(*, delivery_id: int) -> int | None:
    """POST one webhook through Castiel's outbound client; returns the HTTP status."""
    from castiel.http import OutboundClient, OutboundError

    delivery = SandboxDelivery.objects.select_related("account").get(pk=delivery_id)
    if delivery.delivered_at is not None:
        return delivery.last_status
    client = OutboundClient(provider="sandbox")
    delivery.attempts += 1
    try:
        response = client.post(
            delivery.url,
            data=delivery.body.encode(),
            headers=signed_headers(delivery.account, delivery),
            raise_for_status=False,
        )
    except OutboundError as exc:
        delivery.last_error = str(exc)[:500]
        delivery.save(update_fields=["attempts", "last_error"])
        return None
    delivery.last_status = response.status_code
    if response.status_code < 300:
        delivery.delivered_at = timezone.now()
    delivery.save(update_fields=["attempts", "last_status", "delivered_at"])
    return response.status_code
