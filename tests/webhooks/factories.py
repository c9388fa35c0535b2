"""Registrations and events for tests, and the isolation makers for the tenant API walk."""

from __future__ import annotations

from tests.factories import isolation_maker
from webhooks import registrations
from webhooks.models import WebhookEvent, WebhookRegistration

_counter = iter(range(1, 10**9))


def make_registration(tenant, *, scheme="github", secret="test-secret", **fields):
    fields.setdefault("name", f"Registration {next(_counter)}")
    return registrations.registration_create(tenant=tenant, scheme=scheme, secret=secret, **fields)


def make_event(registration, **fields) -> WebhookEvent:
    defaults = {
        "tenant_id": registration.tenant_id,
        "registration": registration,
        "outcome": WebhookEvent.Outcome.ACCEPTED,
        "reason": "ok",
        "http_status": 200,
        "status": WebhookEvent.Status.PROCESSED,
        "dedupe_key": f"key-{next(_counter)}",
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": b"{}",
        "body_size": 2,
    }
    defaults.update(fields)
    return WebhookEvent.objects.create(**defaults)


@isolation_maker(WebhookRegistration)
def make_isolated_registration(tenant):
    return make_registration(tenant)


@isolation_maker(WebhookEvent)
def make_isolated_event(tenant):
    return make_event(make_registration(tenant))
