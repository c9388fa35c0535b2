"""The self-running demo (embedded profile): a tenant whose CRM is the built-in sandbox.

:func:`demo_seed` (called by ``manage.py seed_demo``, i.e. by ``scripts/run`` at every start)
makes sure, idempotently, that:

* the sandbox account ``demo`` exists with contacts and companies (seeded once);
* the demo tenant has the integration **Demo CRM (sandbox)** pointing at that account through
  the web server (``CASTIEL_SANDBOX_BASE_URL``), set up for pull *and* push;
* sync tasks pull contacts (every minute) and companies (every 5 minutes) — and a first run
  of each is queued right away, so records arrive as soon as the worker starts;
* a webhook registration (Standard Webhooks signatures) receives the sandbox's signed
  webhooks: the sandbox account posts to its URL with the same secret;
* a push rule turns every contact event into a ``leads`` record pushed back to the sandbox
  (webhook-triggered push, ``syncing/rules.py``);
* a schedule edits a random sandbox contact every minute (:func:`sandbox_activity`), so
  signed webhooks keep arriving while nobody touches anything;
* the sandbox's chat inbox (``/sandbox/demo/chat/``) is a Slack channel of the tenant,
  subscribed to its incidents: break the sandbox and an alert arrives there.

Everything it creates is named, so a second run finds and updates it (the server's port may
change between runs) instead of duplicating it.
"""

from __future__ import annotations

import base64
import random
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from castiel.observability.logging import get_logger

log = get_logger(__name__)

SANDBOX_ACCOUNT = "demo"
INTEGRATION_NAME = "Demo CRM (sandbox)"
REGISTRATION_NAME = "Demo CRM webhooks"
RULE_NAME = "Contact activity → sandbox leads"
ACTIVITY_SCHEDULE = "demo:sandbox-activity"
CONTACTS, COMPANIES = 120, 20

# How the generic REST adapter reads and writes the sandbox (see docs/sync.md, "Sandbox").
SANDBOX_CONFIG = {
    "records_path": "data",
    "updated_at_field": "updated_at",
    "since_param": "updated_since",
    "deleted_field": "deleted",
    "pagination": {"style": "cursor", "page_size": 50},
    "idempotency_header": "Idempotency-Key",
    "version_header": "ETag",
    "conditional_writes": True,
    "read_only_fields": ["created_at", "deleted_at"],
    "entities": {
        name: {"list_path": f"/{name}/", "item_path": f"/{name}/{{id}}/"}
        for name in ("contacts", "companies", "leads")
    },
}
# The sandbox's webhook body: {"id", "type": "contacts.updated", "created_at", "data": {…}}.
SANDBOX_PARSER = {
    "type": "type",
    "entity_type": "=contacts",
    "external_id": "data.id",
    "payload": "data",
    "occurred_at": "created_at",
    "event_id": "id",
    "complete": True,
}
TASKS = {"contacts": 60, "companies": 300}


@dataclass
class DemoInfo:
    tenant: object
    integration: object
    registration: object
    sandbox_url: str
    webhook_url: str
    queued: list[str]


def demo_seed(*, tenant, base_url: str, sandbox_url: str) -> DemoInfo:
    """Create or refresh the demo's objects (idempotent; see the module docstring)."""
    from integrations.models import Integration
    from sandbox import services as sandbox_services
    from syncing.models import SyncTask

    base_url = base_url.rstrip("/")
    sandbox_url = sandbox_url.rstrip("/")
    with transaction.atomic():
        account = _sandbox_account()
        integration, _ = Integration.objects.update_or_create(
            tenant=tenant,
            name=INTEGRATION_NAME,
            defaults={
                "provider": "generic_rest",
                "config": {
                    "base_url": f"{sandbox_url}/sandbox/{SANDBOX_ACCOUNT}/",
                    **SANDBOX_CONFIG,
                },
            },
        )
        tasks = []
        for entity_type, interval in TASKS.items():
            task, _ = SyncTask.objects.get_or_create(
                integration=integration,
                entity_type=entity_type,
                defaults={"tenant": tenant, "interval_seconds": interval},
            )
            tasks.append(task)
        registration, secret = _registration(tenant, integration)
        webhook_url = f"{base_url}/webhooks/{registration.pk}/"
        changes = {"webhook_url": webhook_url, "webhook_scheme": "standard"}
        if secret:
            changes["webhook_secret"] = secret
        sandbox_services.account_configure(account=account, **changes)
        _rule(tenant, integration)
        _activity_schedule()
        _chat_inbox(tenant, sandbox_url)
    queued = [str(task) for task in tasks if _first_run(task)]
    log.info("demo.seeded", tenant=tenant.slug, queued=len(queued))
    return DemoInfo(
        tenant=tenant,
        integration=integration,
        registration=registration,
        sandbox_url=f"{sandbox_url}/sandbox/{SANDBOX_ACCOUNT}/",
        webhook_url=webhook_url,
        queued=queued,
    )


CHAT_CHANNEL = "Demo chat (sandbox)"
CHAT_SUBSCRIPTION = "Demo alerts"


def _chat_inbox(tenant, sandbox_url: str) -> None:
    """The sandbox's chat inbox (``/sandbox/demo/chat/``) as a Slack channel of the demo
    tenant, subscribed to its incidents as they happen (warnings and worse)."""
    from notifications import services as notify
    from notifications.models import Channel, Subscription

    url = f"{sandbox_url}/sandbox/{SANDBOX_ACCOUNT}/chat/slack/"
    channel = Channel.objects.filter(tenant=tenant, name=CHAT_CHANNEL).first()
    if channel is None:
        channel, _ = notify.channel_create(
            tenant=tenant, name=CHAT_CHANNEL, type="slack", url=url, rate_limit_per_minute=120
        )
    elif notify.channel_secrets(channel).get("url") != url:
        notify.channel_update(channel=channel, url=url)  # the server's port changed
    Subscription.objects.get_or_create(
        tenant=tenant,
        name=CHAT_SUBSCRIPTION,
        defaults={"channel": channel, "mode": Subscription.Mode.IMMEDIATE, "min_severity": 20},
    )


def _sandbox_account():
    from sandbox import services as sandbox_services
    from sandbox.demo import demo_companies, demo_contacts
    from sandbox.models import SandboxAccount

    account = SandboxAccount.objects.filter(slug=SANDBOX_ACCOUNT).first()
    if account is None:
        account = sandbox_services.account_create(slug=SANDBOX_ACCOUNT)
        sandbox_services.objects_seed(
            account=account, collection="contacts", rows=demo_contacts(CONTACTS)
        )
        sandbox_services.objects_seed(
            account=account, collection="companies", rows=demo_companies(COMPANIES)
        )
    return account


def _registration(tenant, integration):
    """The registration, and a new secret when one had to be (re)made (else None).

    The secret lives in the secret store (write-only) and in the sandbox account (the
    simulated provider keeps it to sign). If either side lost it, a fresh one goes to both.
    """
    from sandbox.models import SandboxAccount
    from webhooks import registrations
    from webhooks.models import WebhookRegistration

    account = SandboxAccount.objects.get(slug=SANDBOX_ACCOUNT)
    registration = WebhookRegistration.objects.filter(tenant=tenant, name=REGISTRATION_NAME).first()
    if registration is None:
        secret = _new_secret()
        registration = registrations.registration_create(
            tenant=tenant,
            name=REGISTRATION_NAME,
            scheme="standard_webhooks",
            secret=secret,
            integration=integration,
            parser="generic",
            parser_config=SANDBOX_PARSER,
            event_types=["contacts.*"],
        )
        return registration, secret
    if registration.has_secret and account.webhook_secret:
        return registration, None
    secret = _new_secret()
    registration = registrations.registration_rotate_secret(
        registration=registration, secret=secret, overlap_seconds=0
    )
    return registration, secret


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _rule(tenant, integration):
    from syncing.models import PushRule

    PushRule.objects.get_or_create(
        tenant=tenant,
        name=RULE_NAME,
        defaults={
            "source_integration": integration,
            "source_entity_type": "contacts",
            "event_types": ["contacts.*"],
            "target_integration": integration,
            "target_entity_type": "leads",
            "field_mapping": {
                "email": {"path": "email", "transform": "email"},
                "name": "first_name",
                "company": "company",
                "phone": "phone",
            },
            "match_field": "email",
        },
    )


def _activity_schedule() -> None:
    """Every minute, :func:`sandbox_activity` (named outside ``castiel:``: the schedules
    declared in code are reconciled on migrate, and this one belongs to the demo only)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=ACTIVITY_SCHEDULE,
        defaults={
            "func": "castiel.queue.run",
            "args": repr(("console.demo.sandbox_activity", None, [], {})),
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


def _first_run(task) -> bool:
    """Queue a run now unless the task is busy (records arrive as soon as a worker starts)."""
    from syncing.services import sync_task_run_now

    if not task.integration.is_operational or task.lease_owner:
        return False
    return sync_task_run_now(task=task)


def sandbox_activity() -> dict:
    """The demo's heartbeat: change one random sandbox contact (its phone number), which
    makes the sandbox send a signed webhook to Castiel like a real CRM would."""
    from sandbox import services as sandbox_services
    from sandbox.models import SandboxObject

    if not settings.CASTIEL_SANDBOX:
        return {"outcome": "sandbox_disabled"}
    contacts = SandboxObject.objects.filter(
        account__slug=SANDBOX_ACCOUNT, collection="contacts", deleted_at__isnull=True
    )
    ids = list(contacts.values_list("pk", flat=True))
    if not ids:
        return {"outcome": "no_contacts"}
    rng = random.Random()  # noqa: S311 - demo data, not security
    contact = contacts.get(pk=rng.choice(ids))
    phone = f"+1 415 555 {rng.randrange(10000):04d}"
    sandbox_services.object_update(
        obj=contact,
        data={"phone": phone, "note": f"edited by the demo at {timezone.now():%H:%M:%S}"},
    )
    return {"outcome": "edited", "contact": contact.pk, "phone": phone}
