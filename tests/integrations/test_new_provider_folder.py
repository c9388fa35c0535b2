"""Adding a provider is adding a folder — proven end to end with a copy of the HubSpot folder.

The folder is copied under a new slug into a throw-away package on ``sys.path``; the only
edit is the slug in its ``__init__.py`` (it must equal the folder name). Then, with nothing
registered by hand anywhere else:

* discovery (``registry.autodiscover``, as at start-up) registers it, with the copy's
  adapter, event table, webhook parser and rate-limit header reader — not the originals;
* a sync pulls every page through the real inbound path (scheduler, worker, credential,
  rate-limit gate, pipeline, record store) from a local HTTP server answering with the copied
  fixtures, and the gate reads the provider's own limit headers with the copy's reader;
* a webhook signed as HubSpot signs it goes through the receiver (signature, freshness,
  durable insert), is parsed by the copy's parser under the new slug, routed by the routes
  its table gives, and deletes the record the sync stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
from pathlib import Path

import pytest

from credentials.services import credential_create
from integrations import webhook_events
from integrations.adapters.base import adapter_for
from integrations.models import Integration
from integrations.providers import registry
from ratelimit.selectors import usage_for
from syncing.models import SyncRun
from tests.support.httpserver import running_server
from tests.syncing.helpers import make_task, records_of, run_once
from tests.webhooks.factories import make_registration
from webhooks import processing, receipt, routing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded]

SOURCE = "hubspot"
SLUG = "acme_crm"
SECRET = "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10"
PUBLIC_BASE = "https://castiel.example.com"
COMPANIES = "/crm/v3/objects/companies"


def copy_folder(package: Path) -> Path:
    folder = package / SLUG
    shutil.copytree(
        Path(registry.__file__).parent / SOURCE,
        folder,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    init = folder / "__init__.py"
    source = init.read_text()
    assert source.count(f'slug="{SOURCE}"') == 1
    init.write_text(source.replace(f'slug="{SOURCE}"', f'slug="{SLUG}"'))
    return folder


def fixture(folder: Path, name: str) -> tuple[int, dict[str, str], object]:
    """(status, headers, body) of one of the copied folder's fixtures."""
    body = json.loads((folder / "fixtures" / f"{name}.json").read_text())
    meta_path = folder / "fixtures" / f"{name}.headers.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return meta.get("status", 200), dict(meta.get("headers", {})), body


def hubspot_v3_signature(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, written from its documentation (not from the scheme)."""
    content = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


@pytest.mark.django_db(transaction=True)
def test_a_copied_folder_syncs_and_receives_webhooks_with_nothing_registered_by_hand(
    isolated_registry,
    provider_package,
    tenant,
    client,
    settings,
    enqueued,
    monkeypatch,
    no_push_rules,
):
    name, package = provider_package
    folder = copy_folder(package)

    # -- discovery, the way real providers are found at start-up ----------------------------
    registry.autodiscover(name)
    copied = registry.get(SLUG)
    original = registry.get(SOURCE)
    here = f"{name}.{SLUG}"
    assert copied.adapter == f"{here}.adapter.HubSpotAdapter"
    assert copied.limit_headers.__module__ == f"{here}.limits"
    assert copied.limit_headers is not original.limit_headers
    assert copied.webhooks is not original.webhooks
    assert copied.webhooks.parse.__module__ == f"{here}.webhooks"
    assert copied.webhook_events == original.webhook_events
    # The webhooks app sees a new parser and its routes, from the copied table.
    assert webhook_events.PARSERS[SLUG] is copied.webhooks.parse
    assert routing.DEFAULT_ROUTES[SLUG] == routing.DEFAULT_ROUTES[SOURCE]

    # -- a sync through the real inbound path, against a local server -----------------------
    pages = {}
    after = None
    for page in ("companies_list_page1", "companies_list_page2"):
        status, headers, body = fixture(folder, page)
        pages[after] = (status, headers, body)
        after = (body.get("paging") or {}).get("next", {}).get("after")
    # The last page says the 10-second quota is nearly used: 5 of 100 left.
    last = list(pages)[-1]
    pages[last][1]["X-HubSpot-RateLimit-Remaining"] = "5"

    def list_companies(request):
        status, headers, body = pages[(request.query.get("after") or [None])[0]]
        return status, {k: v for k, v in headers.items() if k.lower() != "date"}, body

    with running_server() as server:
        server.route("GET", COMPANIES)(list_companies)
        integration = Integration.objects.create(
            tenant=tenant, provider=SLUG, name="Acme CRM", config={"api_base": server.url}
        )
        credential_create(
            integration=integration,
            type="bearer_token",
            secret={"token": "test-token-not-real"},
            settings={},
        )
        task = make_task(integration, "companies", mode="full")
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        assert run.pages == 2
        expected = [str(c["id"]) for _s, _h, body in pages.values() for c in body["results"]]
        assert sorted(records_of(task)) == sorted(expected)
        assert all(r.path == COMPANIES for r in server.requests)
        assert all(
            r.headers["authorization"] == "Bearer test-token-not-real" for r in server.requests
        )
        # The rate-limit gate read X-HubSpot-RateLimit-* with the copy's reader (the generic
        # families know nothing of them): 5 of 100 left in the 10-s interval paces the
        # integration, one request per 10/6 s, the limit itself whole.
        usage = usage_for(integration)[1]
        assert usage.state.multiplier == 1.0
        assert usage.state.blocked_until is not None
        assert 0 < usage.state.blocked_until - usage.now <= 10 / 6
        # ...and so do the adapter's pages.
        page = adapter_for(integration, "companies").fetch_page({"mode": "list", "after": last})
        assert (page.rate_limit.limit, page.rate_limit.remaining) == (100, 5)

    # -- a signed webhook through the receiver ------------------------------------------------
    settings.CASTIEL_WEBHOOK_PUBLIC_BASE_URL = PUBLIC_BASE
    queued = []
    monkeypatch.setattr(receipt, "event_enqueue", lambda event_id, **_: queued.append(event_id))
    registration = make_registration(
        tenant,
        scheme=copied.webhook_scheme,
        parser=SLUG,
        integration=integration,
        secret=SECRET,
    )
    _status, headers, payload = fixture(folder, "webhook_company_deletion")
    [deletion] = payload
    assert str(deletion["objectId"]) in records_of(task)
    body = json.dumps(payload).encode()
    path = f"/webhooks/{registration.pk}/"
    timestamp = str(int(time.time() * 1000))
    response = client.post(
        path,
        data=body,
        content_type="application/json",
        HTTP_X_HUBSPOT_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_HUBSPOT_SIGNATURE_VERSION=headers["X-HubSpot-Signature-Version"],
        HTTP_X_HUBSPOT_SIGNATURE_V3=hubspot_v3_signature(
            SECRET, "POST", PUBLIC_BASE + path, body, timestamp
        ),
    )
    assert response.status_code == 200, response.content
    event_id = response.json()["event_id"]
    assert [str(q) for q in queued] == [event_id]

    assert processing.event_process(event_id=event_id) == "processed"
    event = WebhookEvent.objects.get(pk=event_id)
    assert (event.provider, event.event_type, event.entity_type) == (
        SLUG,
        "company.deletion",
        "companies",
    )
    assert event.external_id == str(deletion["objectId"])
    assert [a["action"] for a in event.actions] == [routing.DELETE_RECORD, routing.EVALUATE_RULES]
    assert str(deletion["objectId"]) not in records_of(task)
