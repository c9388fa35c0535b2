"""One of everything an operator can see in the admin, for smoke tests and screenshots."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta

from django.utils import timezone

import tests
from castiel.observability.models import WorkerHeartbeat
from castiel.tenancy.services import api_key_create
from credentials.models import OAuthState
from ratelimit.models import LimiterCounter
from sandbox import services as sandbox_services
from sandbox.models import SandboxDelivery, SandboxIdempotencyKey, SandboxRequest
from tests.factories import ISOLATION_MAKERS
from tests.syncing.pipeline_support import apply_page, task_with
from webhooks.models import WebhookBodySeen

# The apps whose every model must have an admin page.
CASTIEL_APPS = (
    "tenancy",
    "observability",
    "ratelimit",
    "integrations",
    "credentials",
    "syncing",
    "webhooks",
    "sandbox",
)


def load_factories() -> None:
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        if info.name.endswith(".factories"):
            importlib.import_module(info.name)


def populate(tenant) -> None:
    load_factories()
    made = {model: make(tenant) for model, make in ISOLATION_MAKERS.items()}
    api_key_create(tenant=tenant, name="smoke")
    # History rows and dedup keys come from a real pipeline page.
    task = task_with(tenant, dedup_strategy="composite_key", dedup_config={"fields": ["email"]})
    apply_page(task, [{"id": "h1", "email": "ada@example.com", "name": "Ada"}])
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        cluster="castiel", host="web-1", pid=42, started_at=now, last_seen=now
    )
    LimiterCounter.objects.create(key="castiel:rl:{t}:t", data={"1": 3}, expires_at=0)
    credential = next(v for k, v in made.items() if k.__name__ == "Credential")
    OAuthState.objects.create(
        tenant=tenant,
        integration=credential.integration,
        state_hash="0" * 64,
        redirect_uri="http://127.0.0.1/oauth/callback/",
        expires_at=now + timedelta(minutes=10),
    )
    account = sandbox_services.account_create(slug="smoke")
    obj = sandbox_services.object_create(
        account=account, collection="contacts", data={"email": "s@example.com"}
    )
    SandboxRequest.objects.create(
        account=account, number=1, method="GET", path="/contacts/", status=200
    )
    SandboxIdempotencyKey.objects.create(
        account=account, key="k1", method="POST", path="/contacts/", body_hash="0", status=201
    )
    SandboxDelivery.objects.create(
        account=account,
        event_id="evt_smoke",
        event_type="contacts.updated",
        url="http://127.0.0.1:9/",
        body="{}",
    )
    assert obj.pk
    from syncing.models import ChangeFeedPruned

    ChangeFeedPruned.objects.get_or_create(pk=1)
    event = next(v for k, v in made.items() if k.__name__ == "WebhookEvent")
    WebhookBodySeen.objects.create(
        registration=event.registration, body_sha256="0" * 64, event=event, seen_at=now
    )


def busy_day(tenant, task, *, seed: int = 1) -> None:
    """A believable last day before this hour: runs, failures, webhooks, dead letters, a
    credential needing re-authorisation — what the dashboard's screenshot shows."""
    import random

    from console.dashboard.selectors import hour_buckets
    from credentials.models import Credential
    from ratelimit.models import RateLimitOverride
    from ratelimit.services import acquire
    from syncing.models import DeadLetter, SyncRun
    from tests.credentials.factories import make_credential
    from tests.factories import IntegrationFactory
    from tests.syncing.factories import make_dead_letter
    from tests.webhooks.factories import make_event, make_registration

    rng = random.Random(seed)
    buckets = hour_buckets(timezone.now())
    for hour in buckets[:-1]:
        for _ in range(rng.randint(2, 4)):
            failed = rng.random() < 0.12
            SyncRun.objects.create(
                tenant=tenant,
                task=task,
                mode=task.mode,
                status="failed" if failed else "succeeded",
                started_at=hour + timedelta(minutes=rng.randint(0, 59)),
                created=0 if failed else rng.randint(0, 12),
                updated=0 if failed else rng.randint(5, 60),
                deleted=0 if failed else rng.randint(0, 3),
                error_code="http_503" if failed else "",
                error_summary="GET /contacts failed with HTTP 503" if failed else "",
            )
    registration = make_registration(tenant, integration=task.integration, name="Acme hooks")
    for hour in buckets[-12:-1]:
        for _ in range(rng.randint(3, 9)):
            outcome = rng.choices(["accepted", "duplicate", "rejected"], [20, 2, 2])[0]
            make_event(
                registration,
                outcome=outcome,
                reason="bad_signature" if outcome == "rejected" else "ok",
                http_status=401 if outcome == "rejected" else 200,
                received_at=hour + timedelta(minutes=rng.randint(0, 59)),
            )
    for _ in range(3):
        make_dead_letter(tenant)
    DeadLetter.objects.update(created_at=buckets[-4] + timedelta(minutes=12))
    crm = IntegrationFactory(tenant=tenant, name="Billing (Stripe)", provider="stripe")
    credential = make_credential(tenant)
    Credential.objects.filter(pk=credential.pk).update(
        integration=crm,
        status="reauth_required",
        status_reason="invalid_grant: the refresh token was revoked",
    )
    # 40 of an hourly allowance of 50 used: 20 % headroom left at the integration level.
    RateLimitOverride.objects.create(
        tenant=tenant, integration=crm, level="integration", limit=50, window_seconds=3600
    )
    for _ in range(40):
        assert acquire(tenant, crm, "fetch").allowed


# A few realistic contacts and companies (what an operator looks for by name).
CONTACTS = [
    {"id": "c-101", "name": "Ada Lovelace", "email": "ada@acme.example", "company": "Acme"},
    {"id": "c-102", "name": "Grace Hopper", "email": "grace@navy.example", "company": "Navy"},
    {
        "id": "c-103",
        "name": "Katherine Johnson",
        "email": "katherine.johnson@langley-research-center.example",
        "company": "NASA Langley Research Center, Flight Research Division",
    },
]


def contacts(tenant):
    """A generic REST integration (its display fields configured) with three contacts."""
    from tests.factories import IntegrationFactory
    from tests.syncing.helpers import make_task

    integration = IntegrationFactory(
        tenant=tenant,
        name="Acme CRM",
        config={
            "base_url": "http://127.0.0.1:9/api/",
            "display_fields": {"contacts": ["name", "email"], "companies": ["name"]},
        },
    )
    task = make_task(integration, "contacts", name="Acme contacts")
    apply_page(task, CONTACTS)
    return integration


def third_party(user) -> None:
    """One row for each model of the libraries whose admin pages Castiel keeps (auth,
    django-q2, django-axes), so the walk opens one of each."""
    import uuid

    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.contrib.auth.models import Group
    from django_q.models import Failure, OrmQ, Schedule, Success
    from django_q.signing import SignedPackage

    now = timezone.now()
    Group.objects.get_or_create(name="Operators")
    if not Schedule.objects.exists():
        Schedule.objects.create(name="smoke", func="math.floor", args="1", schedule_type="H")
    task = {
        "id": uuid.uuid4().hex,
        "name": "smoke",
        "func": "math.floor",
        "args": (1,),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "success": True,
    }
    OrmQ.objects.create(key="castiel", payload=SignedPackage.dumps(task), lock=now)
    for model, success in ((Success, True), (Failure, False)):
        model.objects.create(
            id=uuid.uuid4().hex,
            name=f"smoke-{success}",
            func="math.floor",
            started=now,
            stopped=now,
            success=success,
            result=1 if success else "Traceback: ValueError",
            attempt_count=1,
        )
    common = {
        "user_agent": "Mozilla/5.0",
        "ip_address": "192.0.2.10",
        "username": user.username,
        "http_accept": "text/html",
        "path_info": "/admin/login/",
    }
    AccessLog.objects.create(**common)
    AccessFailureLog.objects.create(**common, locked_out=False)
    AccessAttempt.objects.create(**common, get_data="", post_data="", failures_since_start=1)
