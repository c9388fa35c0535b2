"""The demo that scripts/run seeds, driven with every queued task run inline (django-q2 sync
mode) against a live server: records flow in from the sandbox, an edit made in the admin is
pushed out, a sandbox change arrives by signed webhook (and fires the demo's push rule), and
seeding again changes nothing."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from castiel.tenancy.models import Tenant
from console import demo
from integrations.models import Integration
from sandbox import services as sandbox_services
from sandbox.models import SandboxAccount, SandboxDelivery, SandboxObject
from syncing.models import Conflict, OutboundChange, PushRule, Record, SyncRun, SyncTask
from syncing.records.stores import get_store
from webhooks.models import WebhookEvent, WebhookRegistration

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inline_tasks(monkeypatch):
    """Every queued task runs at once in the process that queued it (after its commit)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def seed(live_server, inline_tasks, monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "DATA_DIR", tmp_path)
    monkeypatch.setenv("CASTIEL_SANDBOX_BASE_URL", live_server.url)

    def run() -> str:
        out = StringIO()
        call_command("seed_demo", "--base-url", live_server.url, stdout=out)
        return out.getvalue()

    return run


def sandbox_contacts():
    return {
        str(o.pk): o
        for o in SandboxObject.objects.filter(
            account__slug="demo", collection="contacts", deleted_at__isnull=True
        )
    }


def local_contacts(tenant):
    return {
        r.external_id: r
        for r in Record.objects.filter(tenant=tenant, entity_type="contacts", deleted_at=None)
    }


def test_the_demo_flows_end_to_end(seed, live_server):
    output = seed()
    tenant = Tenant.objects.get(slug="demo")
    assert f"{live_server.url}/sandbox/demo/contacts/" in output

    # 1. Records flow in: seeding queued a first run of each task (run inline here).
    runs = {r.task.entity_type: r for r in SyncRun.objects.select_related("task")}
    assert {k: r.status for k, r in runs.items()} == {
        "contacts": "succeeded",
        "companies": "succeeded",
    }
    assert runs["contacts"].created == demo.CONTACTS
    assert runs["companies"].created == demo.COMPANIES
    mine = local_contacts(tenant)
    assert set(mine) == set(sandbox_contacts())

    # 2. An edit made in the admin (logged in with the printed credentials) is pushed out.
    password = re.search(r"password: (\S+)", output).group(1)
    admin = Client()
    assert admin.login(username="admin", password=password)
    external_id, record = sorted(mine.items())[0]
    edited = {**record.data, "company": "Edited in the admin"}
    response = admin.post(
        f"/admin/syncing/record/{record.pk}/change/", {"data": json.dumps(edited)}
    )
    assert response.status_code == 302, response.content.decode()[:1000]
    change = OutboundChange.objects.get(record_id=record.pk, origin="admin")
    change.refresh_from_db()
    assert change.status == "succeeded", (change.status, change.error_summary)
    remote = SandboxObject.objects.get(pk=int(external_id))
    assert remote.data["company"] == "Edited in the admin"
    # The sandbox announced the change by webhook. Run inline, that webhook is applied before
    # the push is acknowledged, so it is not recognised as an echo yet; but only the sandbox's
    # own timestamp changed besides our edit, so it merges cleanly (an update, never a
    # conflict) — either way the copies converge and nothing is pushed back (no ping-pong).
    echo = WebhookEvent.objects.get(external_id=external_id, event_type="contacts.updated")
    assert echo.status == "processed", echo.last_error
    assert echo.actions[0]["result"]["outcome"] in ("echoes", "updated")
    assert get_store().get(tenant.id, record.pk).data == sandbox_services.serialize(remote)
    assert not Conflict.objects.exists()
    assert OutboundChange.objects.filter(record_id=record.pk).count() == 1

    # 3. The demo's activity changes a sandbox contact: a signed webhook brings it in.
    activity = demo.sandbox_activity()
    assert activity["outcome"] == "edited"
    contact_id = str(activity["contact"])
    delivery = SandboxDelivery.objects.filter(event_type="contacts.updated").latest("created_at")
    assert delivery.last_status == 200 and delivery.delivered_at is not None
    event = WebhookEvent.objects.filter(external_id=contact_id).latest("received_at")
    assert (event.outcome, event.matched_secret, event.status) == (
        "accepted",
        "current",
        "processed",
    ), event.last_error
    assert event.actions[0]["result"]["outcome"] == "updated"
    assert get_store().get(tenant.id, mine[contact_id].pk).data["phone"] == activity["phone"]

    # ... and the demo's push rule turned it into a lead, pushed to the sandbox.
    rule_result = next(a for a in event.actions if a["action"] == "push.evaluate_rules")
    assert rule_result["result"]["rules"][0]["outcome"] in ("created", "updated")
    leads = SandboxObject.objects.filter(account__slug="demo", collection="leads")
    email = sandbox_contacts()[contact_id].data["email"]
    assert any(
        lead.data["email"] == email and lead.data["phone"] == activity["phone"] for lead in leads
    )

    # 4. Seeding again (the next start) changes nothing and keeps the webhook secret.
    secret = SandboxAccount.objects.get(slug="demo").webhook_secret
    counts = [
        m.objects.count()
        for m in (Integration, SyncTask, WebhookRegistration, PushRule, SandboxObject)
    ]
    seed()
    assert counts == [
        m.objects.count()
        for m in (Integration, SyncTask, WebhookRegistration, PushRule, SandboxObject)
    ]
    assert SandboxAccount.objects.get(slug="demo").webhook_secret == secret
    from django_q.models import Schedule

    assert Schedule.objects.filter(name=demo.ACTIVITY_SCHEDULE).count() == 1
