"""One of everything an operator can see in the admin, for smoke tests and screenshots."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta

from django.utils import timezone

import tests
from castiel.observability.models import WorkerHeartbeat
from castiel.ratelimit.models import LimiterCounter
from castiel.tenancy.services import api_key_create
from credentials.models import OAuthState
from sandbox import services as sandbox_services
from sandbox.models import SandboxDelivery, SandboxIdempotencyKey, SandboxRequest
from tests.factories import ISOLATION_MAKERS
from tests.syncing.pipeline_support import apply_page, task_with

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
