"""The provider catalogue: one folder per provider, discovered at start-up, honest fixtures.

These tests read the real ``integrations/providers`` package. The registry tests build
throw-away provider packages under ``tmp_path`` and run ``autodiscover`` on them, so they
prove what the README promises: adding a provider is adding a folder, and a broken folder
stops start-up loudly.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from integrations.models import Integration
from integrations.providers import base, registry
from integrations.webhook_events import Delivery
from tests.support.services import unavailable

PROVIDERS_DIR = Path(registry.__file__).parent
REPO_ROOT = PROVIDERS_DIR.parents[1]
FOLDERS = sorted(
    p.name for p in PROVIDERS_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()
)
# Configured per integration (its entities, paging and limits come from the integration's
# config, and its tests run against json-server), so it has no catalogue fixtures.
CONFIGURED_PER_INTEGRATION = {"generic_rest"}
CATALOGUE = [slug for slug in FOLDERS if slug not in CONFIGURED_PER_INTEGRATION]
INTERACTIVE_OAUTH = {"oauth2_authorization_code"}
SIGNATURE_HEADERS = {
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
    "x-hubspot-signature",
    "x-hubspot-signature-v3",
    "webhook-signature",
}


def fixtures_dir(slug: str) -> Path:
    return PROVIDERS_DIR / slug / "fixtures"


def load(slug: str, name: str):
    return json.loads((fixtures_dir(slug) / f"{name}.json").read_text())


def load_meta(slug: str, name: str) -> dict:
    path = fixtures_dir(slug) / f"{name}.headers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def body_fixtures(slug: str) -> list[str]:
    return sorted(
        p.name[: -len(".json")]
        for p in fixtures_dir(slug).glob("*.json")
        if not p.name.endswith(".headers.json")
    )


def header(meta: dict, name: str) -> str | None:
    for key, value in meta.get("headers", {}).items():
        if key.lower() == name.lower():
            return value
    return None


# --------------------------------------------------------------------------- registration


def test_every_provider_folder_is_registered_under_its_slug():
    assert {"github", "salesforce", "hubspot", "stripe", "slack", "generic_rest"} <= set(FOLDERS)
    for folder in FOLDERS:
        assert registry.get(folder).slug == folder
    # ...and nothing is registered that has no folder.
    assert {p.slug for p in registry.all_providers()} == set(FOLDERS)


def test_catalogue_providers_are_offered_as_choices():
    choices = dict(registry.choices())
    assert choices["salesforce"] == "Salesforce"
    assert choices["github"] == "GitHub"


# ------------------------------------------------------------------------ the descriptions


@pytest.mark.parametrize("slug", FOLDERS)
def test_auth_types_come_from_the_known_list(slug):
    provider = registry.get(slug)
    assert provider.auth_types, f"{slug} lists no auth type"
    unknown = set(provider.auth_types) - set(base.AUTH_TYPES)
    assert not unknown, f"{slug}: unknown auth types {sorted(unknown)}"
    assert len(set(provider.auth_types)) == len(provider.auth_types)


def _is_https(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "https" and bool(parsed.netloc) and " " not in url


@pytest.mark.parametrize("slug", FOLDERS)
def test_oauth_endpoints_are_https_and_complete(slug):
    provider = registry.get(slug)
    if INTERACTIVE_OAUTH & set(provider.auth_types) and slug not in CONFIGURED_PER_INTEGRATION:
        # Configurable providers take their endpoints from each integration's config.oauth.
        assert provider.oauth is not None, f"{slug} offers an OAuth flow but no OAuthSpec"
    oauth = provider.oauth
    if oauth is None:
        return
    for url in (oauth.authorize_url, oauth.token_url, oauth.revoke_url or "https://x"):
        assert _is_https(url), f"{slug}: {url!r} is not an https URL"
    assert oauth.scopes and all(isinstance(s, str) and s.strip() == s for s in oauth.scopes)
    assert oauth.scope_delimiter in (" ", ",")
    assert not any(oauth.scope_delimiter in s for s in oauth.scopes)
    assert isinstance(oauth.pkce, bool)


@pytest.mark.parametrize("slug", FOLDERS)
def test_rate_limit_policy_has_the_shared_shape(slug):
    assert base.rate_limit_problems(registry.get(slug).rate_limit) == []


@pytest.mark.parametrize("slug", CATALOGUE)
def test_catalogue_entry_is_complete(slug):
    provider = registry.get(slug)
    assert provider.name.strip(), f"{slug} has no display name"
    assert provider.entity_types, f"{slug} declares no entity types"
    assert len(set(provider.entity_types)) == len(provider.entity_types)
    assert provider.rate_limit, f"{slug} has no default rate-limit policy"
    assert _is_https(provider.docs_url)
    assert re.fullmatch(r"(GET|POST) /\S+", provider.test_connection), provider.test_connection


def test_rate_limit_checker_rejects_inconsistent_policies():
    """The shape check itself can fail (otherwise the test above proves nothing)."""
    good = {"limit": 10, "window": 1, "scope": "account", "source": "docs"}
    assert base.rate_limit_problems(good) == []
    assert base.rate_limit_problems({**good, "scope": "galaxy"})
    assert base.rate_limit_problems({**good, "limit": "10"})
    assert base.rate_limit_problems({**good, "window": 0})
    assert base.rate_limit_problems({**good, "per": "hour"})
    assert base.rate_limit_problems({**good, "headers": ["Retry-After"]})
    assert base.rate_limit_problems({**good, "additional": ({"limit": 5},)})
    assert base.rate_limit_problems({key: good[key] for key in ("limit", "window", "scope")})


def test_documented_default_limits():
    """The figures the providers publish (docs/providers.md), as the limiter will read them."""
    limits = {slug: registry.get(slug).rate_limit for slug in CATALOGUE}
    assert (limits["github"]["limit"], limits["github"]["window"]) == (5000, 3600)
    assert limits["salesforce"]["window"] == 86_400 and limits["salesforce"]["scope"] == "org"
    assert (limits["hubspot"]["limit"], limits["hubspot"]["window"]) == (100, 10)
    assert any(w["window"] == 86_400 for w in limits["hubspot"]["additional"])
    assert (limits["stripe"]["limit"], limits["stripe"]["window"]) == (100, 1)
    assert limits["stripe"]["test_mode"]["limit"] == 25
    assert "Sforce-Limit-Info" in limits["salesforce"]["headers"]
    assert "Retry-After" in limits["slack"]["headers"]


def test_documented_webhook_events():
    """The catalogue's event lists, as derived from the event tables (docs/providers.md)."""
    events = {slug: registry.get(slug).webhook_events for slug in FOLDERS}
    assert events["github"] == {"issues": "issues", "push": "repositories"}
    assert events["stripe"] == dict.fromkeys(
        ("customer.created", "customer.updated", "customer.deleted"), "customers"
    )
    assert set(events["slack"]) == {
        "user_change",
        "team_join",
        "channel_created",
        "channel_rename",
        "channel_archive",
        "channel_unarchive",
        "channel_deleted",
    }
    assert events["hubspot"]["company.deletion"] == "companies" and len(events["hubspot"]) == 10
    assert events["salesforce"] == events["generic_rest"] == {}


@pytest.mark.parametrize("slug", FOLDERS)
def test_webhook_events_map_to_declared_entity_types(slug):
    provider = registry.get(slug)
    if provider.webhook_scheme is None:
        assert not provider.webhook_events, f"{slug} maps events but has no webhook scheme"
        return
    assert provider.webhook_events, f"{slug} has a webhook scheme but declares no events"
    stray = set(provider.webhook_events.values()) - set(provider.entity_types)
    assert not stray, f"{slug}: events map to undeclared entity types {sorted(stray)}"


@pytest.mark.parametrize("slug", FOLDERS)
def test_required_config_is_enforced_and_the_api_base_resolves(slug):
    provider = registry.get(slug)
    assert set(provider.validate_config({})) == set(provider.required_config)
    config = dict.fromkeys(provider.required_config, "https://acme.example.com")
    assert provider.validate_config(config) == {}
    assert not set(provider.required_config) & set(provider.optional_config)
    if provider.api_base:
        assert _is_https(provider.api_base_for(config))


def test_api_base_uses_instance_url_and_allows_an_enterprise_override():
    salesforce = registry.get("salesforce")
    assert (
        salesforce.api_base_for({"instance_url": "https://acme.my.salesforce.com/"})
        == "https://acme.my.salesforce.com/services/data/v66.0"
    )
    assert salesforce.api_base_for(
        {"instance_url": "https://acme.my.salesforce.com", "api_version": "v62.0"}
    ).endswith("/services/data/v62.0")
    github = registry.get("github")
    assert github.api_base_for({}) == "https://api.github.com"
    assert github.api_base_for({"api_base": "https://ghe.acme.example/api/v3"}) == (
        "https://ghe.acme.example/api/v3"
    )


# ------------------------------------------------------------------ bad input in API/admin


@pytest.mark.django_db
class TestConfigValidation:
    def test_salesforce_without_instance_url_is_a_clear_api_error(self, api):
        response = api.post(
            "/api/v1/integrations/", {"provider": "salesforce", "name": "CRM"}, format="json"
        )
        assert response.status_code == 400
        assert "instance_url" in response.json()["details"]["config"]
        assert not Integration.objects.exists()

    def test_salesforce_with_instance_url_is_accepted(self, api):
        response = api.post(
            "/api/v1/integrations/",
            {
                "provider": "salesforce",
                "name": "CRM",
                "config": {"instance_url": "https://acme.my.salesforce.com"},
            },
            format="json",
        )
        assert response.status_code == 201, response.json()

    @pytest.mark.parametrize("slug", ["github", "hubspot", "stripe", "slack"])
    def test_providers_without_required_config_accept_an_empty_config(self, api, slug):
        response = api.post(
            "/api/v1/integrations/", {"provider": slug, "name": slug}, format="json"
        )
        assert response.status_code == 201, response.json()

    def test_admin_validation_names_the_missing_key(self, tenant):
        integration = Integration(tenant=tenant, provider="salesforce", name="CRM", config={})
        with pytest.raises(ValidationError) as excinfo:
            integration.full_clean()
        assert "instance_url" in str(excinfo.value.message_dict["config"])


# ----------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("slug", CATALOGUE)
def test_every_fixture_is_json_and_listed_in_sources(slug):
    folder = fixtures_dir(slug)
    assert folder.is_dir(), f"{slug} has no fixtures/ folder"
    sources = (folder / "SOURCES.md").read_text()
    files = sorted(folder.glob("*.json"))
    assert files
    unlisted = [p.name for p in files if f"`{p.name}`" not in sources]
    assert not unlisted, f"{slug}: not listed in fixtures/SOURCES.md: {unlisted}"
    for path in files:
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path.relative_to(REPO_ROOT)} is not valid JSON: {exc}")
    # Every row names a source URL, and SOURCES.md lists no file that does not exist.
    for row in (line for line in sources.splitlines() if line.startswith("| `")):
        files_cell, source_cell = row.split(" | ")[:2]
        assert "https://" in source_cell, f"{slug}: no source URL in {row}"
        for name in re.findall(r"`([\w.]+\.json)`", files_cell):
            assert (folder / name).exists(), f"{slug}: SOURCES.md lists missing {name}"


@pytest.mark.parametrize("slug", CATALOGUE)
def test_headers_files_are_well_formed(slug):
    for path in fixtures_dir(slug).glob("*.headers.json"):
        sibling = path.with_name(path.name.replace(".headers.json", ".json"))
        assert sibling.exists(), f"{path.name} has no response/payload beside it"
        meta = json.loads(path.read_text())
        assert set(meta) <= {"status", "headers"}, path.name
        assert isinstance(meta["headers"], dict), path.name
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta["headers"].items())
        if "status" in meta:
            assert isinstance(meta["status"], int) and 100 <= meta["status"] < 600, path.name
        if path.name.startswith("webhook_"):
            assert "status" not in meta, f"{path.name}: webhook headers are request headers"
            # Signatures are computed by tests from a test secret, never stored.
            signed = {k.lower() for k in meta["headers"]} & SIGNATURE_HEADERS
            assert not signed, f"{path.name} stores a signature: {sorted(signed)}"


@pytest.mark.parametrize("slug", CATALOGUE)
def test_each_provider_has_the_fixture_set_adapters_need(slug):
    names = body_fixtures(slug)
    assert any(n.endswith("_page1") for n in names) and any(n.endswith("_page2") for n in names)
    assert any(n.startswith("error_") for n in names)
    assert "rate_limited" in names
    rate_limited = load_meta(slug, "rate_limited")
    assert rate_limited.get("status") in (403, 429), f"{slug}: rate_limited needs its status"
    for name in names:
        if name.startswith(("error_", "rate_limited")):
            assert "status" in load_meta(slug, name), f"{slug}/{name} needs a status"
    if registry.get(slug).webhook_scheme:
        assert any(n.startswith("webhook_") for n in names), f"{slug}: no webhook payload"


# How each provider says "there is another page" (the adapter contract will own this; here
# it proves every paging sequence in the fixtures continues and then ends).
def _github_next(slug, name):
    link = header(load_meta(slug, name), "Link") or ""
    found = re.search(r'<([^>]+)>;\s*rel="next"', link)
    return found.group(1) if found else None


def _salesforce_next(slug, name):
    body = load(slug, name)
    assert body["done"] is ("nextRecordsUrl" not in body)
    return body.get("nextRecordsUrl")


def _hubspot_next(slug, name):
    return (load(slug, name).get("paging") or {}).get("next", {}).get("after")


def _stripe_next(slug, name):
    body = load(slug, name)
    assert body["object"] == "list"
    return body["data"][-1]["id"] if body["has_more"] else None


def _slack_next(slug, name):
    body = load(slug, name)
    assert body["ok"] is True
    return body["response_metadata"]["next_cursor"] or None


NEXT_PAGE: dict[str, Callable[[str, str], str | None]] = {
    "github": _github_next,
    "salesforce": _salesforce_next,
    "hubspot": _hubspot_next,
    "stripe": _stripe_next,
    "slack": _slack_next,
}


def _sequences(slug: str) -> dict[str, list[str]]:
    sequences: dict[str, list[str]] = {}
    for name in body_fixtures(slug):
        match = re.fullmatch(r"(.+)_page(\d+)", name)
        if match:
            sequences.setdefault(match.group(1), []).append(name)
    return {k: sorted(v, key=lambda n: int(n.rsplit("page", 1)[1])) for k, v in sequences.items()}


@pytest.mark.parametrize("slug", CATALOGUE)
def test_paging_sequences_continue_and_then_end(slug):
    assert slug in NEXT_PAGE, f"add {slug}'s next-page rule to NEXT_PAGE"
    sequences = _sequences(slug)
    assert sequences
    for prefix, pages in sequences.items():
        assert len(pages) >= 2, f"{slug}/{prefix}: a paging sequence needs several pages"
        tokens = [NEXT_PAGE[slug](slug, page) for page in pages]
        assert all(tokens[:-1]), f"{slug}/{prefix}: a page before the last has no next page"
        assert tokens[-1] is None, f"{slug}/{prefix}: the last page still points further"
        assert len(set(tokens[:-1])) == len(tokens) - 1


def test_github_link_pages_carry_since_and_point_at_the_following_page():
    for number, name in enumerate(_sequences("github")["issues_list"][:-1], start=1):
        query = parse_qs(urlparse(_github_next("github", name)).query)
        assert query["page"] == [str(number + 1)]
        assert query["since"] == ["2024-05-01T00:00:00Z"]


def test_stripe_pages_follow_starting_after():
    pages = _sequences("stripe")["customers_list"]
    ids = [c["id"] for page in pages for c in load("stripe", page)["data"]]
    assert len(ids) == len(set(ids))
    created = [c["created"] for page in pages for c in load("stripe", page)["data"]]
    assert created == sorted(created, reverse=True)  # Stripe lists newest first


def test_salesforce_total_size_matches_the_records_across_batches():
    for pages in _sequences("salesforce").values():
        bodies = [load("salesforce", page) for page in pages]
        assert {b["totalSize"] for b in bodies} == {sum(len(b["records"]) for b in bodies)}
        assert all(
            r["attributes"]["type"] in ("Contact", "Account") for b in bodies for r in b["records"]
        )


def test_rate_limit_headers_say_what_the_policy_says():
    """The headers named in each policy are the ones the fixtures actually carry."""
    for slug in CATALOGUE:
        policy_headers = {h.lower() for h in registry.get(slug).rate_limit.get("headers", ())}
        seen = {
            key.lower()
            for name in body_fixtures(slug)
            for key in load_meta(slug, name).get("headers", {})
        }
        missing = policy_headers - seen
        # GitHub's retry-after, HubSpot's daily headers etc. appear only on some responses,
        # but each must appear in at least one fixture.
        assert not missing, f"{slug}: no fixture carries {sorted(missing)}"


def test_rate_limited_fixtures_carry_each_providers_documented_signal():
    """What tells a rate limit apart from other errors, per provider (see each docstring)."""
    gh_primary = load_meta("github", "rate_limited")
    assert header(gh_primary, "X-RateLimit-Remaining") == "0"
    assert header(load_meta("github", "rate_limited_secondary"), "Retry-After")
    # GitHub's permission 403: same status, but quota left and no Retry-After.
    forbidden = load_meta("github", "error_forbidden")
    assert forbidden["status"] == gh_primary["status"] == 403
    assert header(forbidden, "X-RateLimit-Remaining") != "0"
    assert header(forbidden, "Retry-After") is None
    assert load("salesforce", "rate_limited")[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert re.fullmatch(
        r"api-usage=\d+/\d+", header(load_meta("salesforce", "rate_limited"), "Sforce-Limit-Info")
    )
    assert load("hubspot", "rate_limited")["policyName"] == "TEN_SECONDLY_ROLLING"
    assert load("hubspot", "rate_limited_daily")["policyName"] == "DAILY"
    assert header(load_meta("stripe", "rate_limited"), "Stripe-Rate-Limited-Reason")
    # Stripe's lock timeout is also a 429 but not a rate limit: no reason header.
    assert header(load_meta("stripe", "error_lock_timeout"), "Stripe-Rate-Limited-Reason") is None
    assert header(load_meta("slack", "rate_limited"), "Retry-After") == "30"
    # Slack reports every other error with HTTP 200 and ok=false.
    for name in ("error_invalid_auth", "error_missing_scope", "error_channel_not_found"):
        assert load_meta("slack", name)["status"] == 200 and load("slack", name)["ok"] is False


def _webhook_events(slug: str) -> list:
    """Every event the provider's webhook fixtures carry, read by the provider's own parser
    (the one its event table decorates)."""
    parse = registry.get(slug).webhooks.parse
    return [
        event
        for name in body_fixtures(slug)
        if name.startswith("webhook_")
        for event in parse(
            Delivery(
                body=load(slug, name), headers=load_meta(slug, name).get("headers", {}), config={}
            )
        )
    ]


@pytest.mark.parametrize("slug", FOLDERS)
def test_a_webhook_scheme_comes_with_an_event_table_and_its_parser(slug):
    provider = registry.get(slug)
    if provider.webhook_scheme is None:
        assert provider.webhooks is None, f"{slug} has an event table but no webhook scheme"
        return
    assert provider.webhooks is not None, f"{slug}: add its event table (webhooks.py)"
    assert provider.webhooks.parse is not None, f"{slug}: decorate its parser @EVENTS.parser"
    # The catalogue's event list is the table's.
    assert provider.webhook_events == provider.webhooks.entity_types()


@pytest.mark.parametrize("slug", CATALOGUE)
def test_webhook_fixtures_only_trigger_declared_events(slug):
    provider = registry.get(slug)
    if provider.webhook_scheme is None:
        return
    events = _webhook_events(slug)
    assert events, f"{slug}: no webhook fixture carries an event"
    undeclared = sorted({e.type for e in events if provider.webhooks.row(e.type) is None})
    assert not undeclared, f"{slug}: fixtures trigger events its table lacks {undeclared}"
    for event in events:
        row = provider.webhooks.row(event.type)
        assert row.name in provider.webhook_events, f"{slug}: {event.type} is not catalogued"


def test_github_webhook_fixtures_are_the_recorded_octokit_payloads():
    index = (
        REPO_ROOT / "tests/node/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
    )
    if not index.exists():
        unavailable("npm packages missing: run `npm ci` in tests/node (scripts/test does)")
    examples = {e["name"]: e["examples"] for e in json.loads(index.read_text())}
    for name in (n for n in body_fixtures("github") if n.startswith("webhook_")):
        event = header(load_meta("github", name), "X-GitHub-Event")
        assert load("github", name) in examples[event], f"{name} is not a recorded payload"


# ------------------------------------------------------------------------------ registry


def _add_provider(package: Path, folder: str, source: str) -> None:
    (package / folder).mkdir()
    (package / folder / "__init__.py").write_text(source)


PROVIDER_SOURCE = """
from integrations.providers.base import ProviderInfo

PROVIDER = ProviderInfo(
    slug="{slug}",
    name="Acme CRM",
    auth_types=("bearer_token",),
    api_base="https://api.acme-crm.example",
    entity_types=("accounts",),
    rate_limit={{"limit": 10, "window": 1, "scope": "account", "source": "Acme docs"}},
    required_config=("region",),
)
"""


def test_autodiscover_registers_a_new_folder(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "acme_crm", PROVIDER_SOURCE.format(slug="acme_crm"))
    with pytest.raises(registry.UnknownProvider):
        registry.get("acme_crm")

    registry.autodiscover(name)

    acme = registry.get("acme_crm")
    assert acme.name == "Acme CRM"
    assert ("acme_crm", "Acme CRM") in registry.choices()
    assert acme.validate_config({}) == {
        "region": "Acme CRM integrations need 'region' in their config."
    }
    # Discovery is idempotent: a second run (e.g. a re-imported app) changes nothing.
    registry.autodiscover(name)
    assert registry.get("acme_crm") is acme


@pytest.mark.django_db
def test_a_copied_provider_folder_is_usable_through_the_api(
    isolated_registry, provider_package, api
):
    """The README recipe, literally: copy a folder, change the slug, and it is a provider."""
    name, package = provider_package
    shutil.copytree(
        PROVIDERS_DIR / "stripe", package / "acme_pay", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = package / "acme_pay" / "__init__.py"
    init.write_text(init.read_text().replace('slug="stripe"', 'slug="acme_pay"'))

    registry.autodiscover(name)

    copied = registry.get("acme_pay")
    assert copied.entity_types == ("customers",)
    assert (package / "acme_pay" / "fixtures" / "SOURCES.md").exists()
    response = api.post(
        "/api/v1/integrations/", {"provider": "acme_pay", "name": "Pay"}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_a_folder_without_provider_fails_loudly(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "half_done", '"""Forgot PROVIDER."""\n')
    with pytest.raises(ImproperlyConfigured, match=rf"{name}\.half_done must define PROVIDER"):
        registry.autodiscover(name)


def test_provider_that_is_not_a_provider_info_fails_loudly(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "dict_provider", 'PROVIDER = {"slug": "dict_provider"}\n')
    with pytest.raises(ImproperlyConfigured, match="must define PROVIDER"):
        registry.autodiscover(name)


def test_slug_and_folder_mismatch_fails_loudly(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "acme_crm", PROVIDER_SOURCE.format(slug="acme"))
    with pytest.raises(ImproperlyConfigured, match="folder 'acme_crm' declares slug 'acme'"):
        registry.autodiscover(name)
    with pytest.raises(registry.UnknownProvider):
        registry.get("acme")


def test_a_provider_that_cannot_import_stops_discovery(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "broken", "import castiel_module_that_does_not_exist  # noqa\n")
    with pytest.raises(ModuleNotFoundError, match="castiel_module_that_does_not_exist"):
        registry.autodiscover(name)


def test_two_folders_claiming_one_slug_fail_loudly(isolated_registry, provider_package):
    name, package = provider_package
    _add_provider(package, "github", PROVIDER_SOURCE.format(slug="github"))
    with pytest.raises(ImproperlyConfigured, match="two providers claim the slug 'github'"):
        registry.autodiscover(name)


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_copied_provider_folder_with_its_adapter_syncs(
    isolated_registry, provider_package, tenant, spawn, enqueued
):
    """Copy the Stripe folder, adapter included, as a new provider and sync with it from a
    running localstripe: discovery, config validation, the adapter (resolved inside the copy,
    not the original), credential, limiter and worker all work for the new slug."""
    import stripe

    from credentials.services import credential_create
    from syncing.models import SyncRun
    from tests.syncing.helpers import make_task, records_of, run_once
    from tests.webhooks import live

    name, package = provider_package
    shutil.copytree(
        PROVIDERS_DIR / "stripe", package / "acme_pay", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = package / "acme_pay" / "__init__.py"
    init.write_text(init.read_text().replace('slug="stripe"', 'slug="acme_pay"'))
    registry.autodiscover(name)
    copied = registry.get("acme_pay")
    assert copied.adapter == f"{name}.acme_pay.adapter.StripeAdapter"
    assert copied.validate_config({"page_size": 500}) == {
        "page_size": "page_size must be an integer from 1 to 100."
    }

    url = live.start_localstripe(spawn)
    client = stripe.StripeClient("sk_test_copied", base_addresses={"api": url})
    made = {client.v1.customers.create(params={"email": f"p{i}@example.com"}).id for i in range(3)}
    integration = Integration.objects.create(
        tenant=tenant, provider="acme_pay", name="Pay", config={"api_base": url, "page_size": 2}
    )
    credential_create(
        integration=integration,
        type="api_key",
        secret={"api_key": "sk_test_copied"},
        settings={"name": "Authorization", "prefix": "Bearer "},
    )
    task = make_task(integration, "customers")
    run = run_once(task, enqueued)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert (run.pages, set(records_of(task))) == (2, made)
