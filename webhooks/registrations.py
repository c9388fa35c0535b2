"""Registrations: create, edit, rotate or generate the signing secret, delete (keyword-only
writes; each invalidates the receiver's cached copy)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from castiel.observability.logging import get_logger
from webhooks import lookup, signing
from webhooks.models import WebhookRegistration
from webhooks.schemes import get_scheme
from webhooks.validation import validate_secret

log = get_logger(__name__)

EDITABLE_FIELDS = (
    "name",
    "integration",
    "scheme",
    "scheme_config",
    "parser",
    "parser_config",
    "timestamp_tolerance",
    "dedupe_rule",
    "event_types",
    "routes",
    "rate_limit_per_minute",
    "is_active",
)


@transaction.atomic
def registration_create(*, tenant, name: str, scheme: str, secret: str = "", **fields):
    """Create a registration; ``secret`` (write-only) goes to the secret store."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown registration fields: {sorted(unknown)}")
    registration = WebhookRegistration(
        id=uuid.uuid4(), tenant=tenant, name=name, scheme=scheme, **fields
    )
    registration.secret_name = signing.secret_name_for(registration.id)
    registration.full_clean(exclude=["secret_name"])
    if secret:
        validate_secret(scheme, secret)
    registration.save(force_insert=True)
    if secret:
        registration.secret_version = signing.store_secret(registration, secret)
        registration.secret_rotated_at = timezone.now()
        registration.save(update_fields=["secret_version", "secret_rotated_at", "updated_at"])
    log.info("webhooks.registration_created", registration=str(registration.pk), scheme=scheme)
    return registration


@transaction.atomic
def registration_update(*, registration: WebhookRegistration, **fields) -> WebhookRegistration:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown registration fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(registration, name, value)
    registration.full_clean(exclude=["secret_name"])
    registration.save()
    return registration


@transaction.atomic
def registration_rotate_secret(
    *, registration: WebhookRegistration, secret: str, overlap_seconds: int | None = None
) -> WebhookRegistration:
    """Make ``secret`` current; the old one stays valid for ``overlap_seconds``.

    With an overlap of 0 the old secret stops working at once (use it when the old one
    leaked). A registration without a secret simply gets its first one.
    """
    validate_secret(registration.scheme, secret)
    if overlap_seconds is None:
        overlap_seconds = settings.CASTIEL_WEBHOOK_SECRET_OVERLAP_SECONDS
    if overlap_seconds < 0:
        raise ValueError("overlap_seconds cannot be negative")
    registration = WebhookRegistration.objects.select_for_update().get(pk=registration.pk)
    now = timezone.now()
    new_version = signing.store_secret(registration, secret)
    if registration.secret_version and overlap_seconds > 0:
        registration.previous_secret_version = registration.secret_version
        registration.previous_secret_expires_at = now + timedelta(seconds=overlap_seconds)
    else:
        registration.previous_secret_version = ""
        registration.previous_secret_expires_at = None
    registration.secret_version = new_version
    registration.secret_rotated_at = now
    registration.save(
        update_fields=[
            "secret_version",
            "previous_secret_version",
            "previous_secret_expires_at",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    log.info(
        "webhooks.secret_rotated",
        registration=str(registration.pk),
        overlap_seconds=overlap_seconds,
    )
    return registration


class SecretNotGenerated(ValueError):
    """The scheme's provider issues the secret; Castiel cannot make one up for it."""


def registration_generate_secret(
    *, registration: WebhookRegistration, overlap_seconds: int | None = None
) -> tuple[WebhookRegistration, str]:
    """Rotate to a new random secret, for schemes whose receiver chooses it (GitHub, Graph,
    generic HMAC); returns the registration and the secret, to be shown to the operator once
    and pasted into the provider. The previous secret keeps working for the overlap, so
    deliveries signed with it while the provider is updated are still accepted."""
    scheme = get_scheme(registration.scheme)
    if not scheme.receiver_chooses_secret:
        raise SecretNotGenerated(
            f"{scheme.label} issues its own signing secret: copy it from the provider "
            "and paste it here instead"
        )
    secret = scheme.generate_secret(registration.scheme_config or {})
    registration = registration_rotate_secret(
        registration=registration, secret=secret, overlap_seconds=overlap_seconds
    )
    return registration, secret


def registration_delete(*, registration: WebhookRegistration) -> None:
    name = registration.secret_name
    with transaction.atomic():
        registration.delete()
        transaction.on_commit(lambda: signing.delete_secret(name))


def invalidate_registration(registration_id) -> None:
    lookup.invalidate(registration_id)
