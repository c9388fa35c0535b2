"""GitHub: issues and repositories over REST v3, fed by the recorded fixtures at the HTTP
boundary (``responses``); the webhook parser reads the real recorded payloads of
``@octokit/webhooks-examples``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations import webhook_events as parsers
from integrations.adapters.base import PushNotSupported
from integrations.webhook_events import Delivery
from syncing.models import DeadLetter, SyncRun
from syncing.outbound import local_changes
from syncing.records.stores import get_store
from tests.integrations.providers.support import (
    ProviderContract,
    answer,
    deliver,
    fixture,
    make_integration,
    query,
    walk,
)
from tests.support.services import unavailable
from tests.syncing.helpers import make_task, records_of, run_once
from tests.syncing.outbound_support import push_all

pytestmark = [pytest.mark.embedded]

API = "https://api.github.com"
ISSUES = f"{API}/repos/acme-corp/widgets/issues"
PAGE_URL = f"{API}/repositories/712345678/issues"
OCTOKIT = (
    Path(__file__).resolve().parents[2]
    / "node/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
)


def next_url(name: str, rel: str = "next") -> str:
    link = fixture("github", name).headers["Link"]
    for part in link.split(","):
        url, _, kind = part.partition(";")
        if f'rel="{rel}"' in kind:
            return url.strip()[1:-1]
    raise AssertionError(f"{name} has no rel={rel}")


def issues_query(**extra):
    return query(state="all", sort="updated", direction="asc", per_page=100, **extra)


class TestGitHub(ProviderContract):
    slug = "github"
    entity = "issues"
    config = {"repository": "acme-corp/widgets"}
    credential = ("bearer_token", {"token": "test-token-not-real"}, {})
    pages = ["issues_list_page1", "issues_list_page2", "issues_list_page3"]
    errors = {
        "error_bad_credentials": ("invalid_credentials", False),
        "error_forbidden": ("forbidden", False),
        "error_not_found": ("not_found", False),
        "rate_limited": ("rate_limited", True),
        "rate_limited_secondary": ("rate_limited", True),
    }
    webhooks = {
        "webhook_issues_opened": [
            ("issues.opened", "issues", "Codertocat/Hello-World#1", True, False)
        ],
    }
    connection = ("GET", f"{API}/user", "user")
    connection_failures = {
        "error_bad_credentials": "invalid_credentials",
        "rate_limited": "rate_limited",
    }

    def mock_pages(self, rsps):
        answer(rsps, "GET", ISSUES, "github", "issues_list_page1", match=issues_query())
        answer(rsps, "GET", next_url("issues_list_page1"), "github", "issues_list_page2")
        answer(rsps, "GET", next_url("issues_list_page2"), "github", "issues_list_page3")

    def first_page_request(self):
        return "GET", ISSUES

    def expected_ids(self):
        ids = []
        for name in self.pages:
            for issue in fixture("github", name).body:
                if "pull_request" not in issue:
                    ids.append(f"acme-corp/widgets#{issue['number']}")
        return ids

    def expected_rate_limit(self):
        return (5000, 4989)

    # -- GitHub specifics --------------------------------------------------------------

    @pytest.mark.django_db
    def test_pull_requests_are_skipped_and_since_is_sent(self, integration, rsps):
        answer(
            rsps,
            "GET",
            ISSUES,
            "github",
            "issues_list_page1",
            match=issues_query(since="2024-05-01T00:00:00Z"),
        )
        page = self.adapter(integration).fetch_page(None, since="2024-05-01T00:00:00Z")
        numbers = [r["number"] for r in page.records]
        assert 44 not in numbers and numbers == [41, 38]
        assert page.info["skipped_pull_requests"] == 1
        assert page.next_cursor == {"url": next_url("issues_list_page1")}

    @pytest.mark.django_db
    def test_a_link_to_another_host_is_not_followed(self, integration, rsps):
        from integrations.adapters.base import InvalidCursor

        with pytest.raises(InvalidCursor):
            self.adapter(integration).fetch_page({"url": "https://evil.example/issues?page=2"})

    @pytest.mark.django_db
    def test_the_requests_sent_are_exactly_githubs(self, tenant, rsps):
        """The shared Link paginator sends what the hand-written one did: the documented query
        in the same order, no page number on the first request, the next URL verbatim."""
        integration = make_integration(
            tenant, "github", {"repository": "acme-corp/widgets"}, credential=self.credential
        )
        self.mock_pages(rsps)
        answer(rsps, "GET", ISSUES, "github", "issues_list_page1")
        walk(self.adapter(integration), since="2024-05-01T00:00:00Z")
        sent = [call.request.url for call in rsps.calls]
        assert sent == [
            f"{ISSUES}?state=all&sort=updated&direction=asc&per_page=100"
            "&since=2024-05-01T00%3A00%3A00Z",
            next_url("issues_list_page1"),
            next_url("issues_list_page2"),
        ]
        rsps.reset()
        orgs = make_integration(
            tenant, "github", {"organization": "acme-corp"}, credential=self.credential, name="o"
        )
        answer(rsps, "GET", f"{API}/orgs/acme-corp/repos", "github", "repositories_list_page2")
        self.adapter(orgs, "repositories").fetch_page(None)
        assert [call.request.url for call in rsps.calls] == [
            f"{API}/orgs/acme-corp/repos?sort=updated&direction=asc&per_page=100&type=all"
        ]

    @pytest.mark.django_db
    def test_repositories_of_an_organisation(self, tenant, rsps):
        integration = make_integration(
            tenant, "github", {"organization": "acme-corp"}, credential=self.credential
        )
        answer(
            rsps,
            "GET",
            f"{API}/orgs/acme-corp/repos",
            "github",
            "repositories_list_page1",
            match=query(type="all", sort="updated", direction="asc", per_page=100),
        )
        link = fixture("github", "repositories_list_page1").headers["Link"]
        second = link.split(";")[0].strip()[1:-1]
        answer(rsps, "GET", second, "github", "repositories_list_page2")
        adapter = self.adapter(integration, "repositories")
        pages = walk(adapter)
        ids = [adapter.external_id(r) for p in pages for r in p.records]
        expected = [
            str(r["id"])
            for n in ("repositories_list_page1", "repositories_list_page2")
            for r in fixture("github", n).body
        ]
        assert ids == expected and len(pages) == 2

    @pytest.mark.django_db
    def test_issues_need_a_repository(self, tenant):
        from integrations.adapters.base import AdapterConfigError

        integration = make_integration(tenant, "github", {}, credential=self.credential)
        with pytest.raises(AdapterConfigError, match="repository"):
            self.adapter(integration).validate()

    @pytest.mark.django_db
    def test_a_403_is_a_missing_scope_when_the_accepted_scopes_say_so(self, integration, rsps):
        found = fixture("github", "error_forbidden")
        rsps.add(
            "GET",
            ISSUES,
            body=found.text,
            status=403,
            headers={
                **{k: v for k, v in found.headers.items() if k != "Content-Type"},
                "X-OAuth-Scopes": "read:org",
                "X-Accepted-OAuth-Scopes": "repo",
            },
        )
        with pytest.raises(Exception) as caught:
            self.adapter(integration).fetch_page(None)
        assert caught.value.reason == "missing_scope"
        assert caught.value.details["required_scopes"] == ["repo"]
        assert not caught.value.retryable

    @pytest.mark.django_db
    def test_a_secondary_limit_without_retry_after_waits_a_minute(self, integration, rsps):
        found = fixture("github", "rate_limited_secondary")
        headers = {
            k: v for k, v in found.headers.items() if k not in ("Retry-After", "Content-Type")
        }
        rsps.add(
            "GET",
            ISSUES,
            json={
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                "before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
            status=403,
            headers=headers,
        )
        with pytest.raises(Exception) as caught:
            self.adapter(integration).fetch_page(None)
        assert caught.value.reason == "rate_limited" and caught.value.retry_after == 60

    @pytest.mark.django_db
    def test_connection_reports_scopes_the_token_lacks(self, integration, rsps):
        found = fixture("github", "user")
        rsps.add(
            "GET",
            f"{API}/user",
            body=found.text,
            headers={
                **{k: v for k, v in found.headers.items() if k != "Content-Type"},
                "X-OAuth-Scopes": "repo",
            },
            content_type="application/json",
        )
        from integrations.services import integration_test_connection

        result = integration_test_connection(integration=integration)
        assert (result.ok, result.code) == (False, "missing_scope")
        assert result.details["missing_scopes"] == ["read:org"]
        assert "read:org" in result.message

    # -- push ------------------------------------------------------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_create_and_update_an_issue_through_the_push_worker(
        self, integration, rsps, enqueued, pushes
    ):
        make_task(integration, "issues")
        created = fixture("github", "issue_create").body
        change = local_changes.record_create(
            integration=integration,
            entity_type="issues",
            data={"title": created["title"], "body": "Steps to reproduce", "labels": ["bug"]},
        ).change
        post = answer(rsps, "POST", ISSUES, "github", "issue_create")
        assert push_all(pushes) == {"succeeded": 1}
        sent = json.loads(post.calls[0].request.body)
        assert sent["title"] == created["title"] and sent["labels"] == ["bug"]
        assert f"<!-- castiel:{change.idempotency_key} -->" in sent["body"]
        key = f"acme-corp/widgets#{created['number']}"
        record = get_store().get(integration.tenant_id, change.record_id)
        assert record.external_id == key

        # Closing it: only the changed fields are sent, by number.
        local_changes.record_update(
            tenant_id=integration.tenant_id,
            record_id=record.id,
            data={"state": "closed", "state_reason": "completed"},
        )
        patch = answer(rsps, "PATCH", f"{ISSUES}/{created['number']}", "github", "issue_update")
        assert push_all(pushes) == {"succeeded": 1}
        assert json.loads(patch.calls[0].request.body) == {
            "state": "closed",
            "state_reason": "completed",
        }
        record = get_store().get(integration.tenant_id, change.record_id)
        assert record.data["state"] == "closed"

    @pytest.mark.django_db(transaction=True)
    def test_a_retried_create_finds_the_issue_by_its_marker(
        self, integration, rsps, enqueued, pushes, fast_pushes
    ):
        import requests

        make_task(integration, "issues")
        change = local_changes.record_create(
            integration=integration, entity_type="issues", data={"title": "Once only"}
        ).change
        created = dict(fixture("github", "issue_create").body)
        created["body"] = f"\n\n<!-- castiel:{change.idempotency_key} -->"
        # The first POST's answer is lost (the connection drops); the issue exists anyway.
        rsps.add("POST", ISSUES, body=requests.ConnectionError("connection reset"))
        listing = rsps.add(
            "GET",
            ISSUES,
            json=[created],
            match=query(state="all", sort="created", direction="desc", per_page=50),
        )
        assert push_all(pushes) == {"retry": 1, "succeeded": 1}
        assert len(rsps.calls) == 2 and listing.call_count == 1
        change.refresh_from_db()
        assert change.replayed and change.remote_id == f"acme-corp/widgets#{created['number']}"

    @pytest.mark.django_db(transaction=True)
    def test_a_validation_error_is_a_dead_letter_with_githubs_reasons(
        self, integration, rsps, enqueued, pushes
    ):
        make_task(integration, "issues")
        local_changes.record_create(
            integration=integration, entity_type="issues", data={"body": "x"}
        )
        answer(rsps, "POST", ISSUES, "github", "error_validation_failed")
        assert push_all(pushes) == {"dead": 1}
        letter = DeadLetter.objects.get()
        assert letter.error_code == "http_422"
        assert "Validation Failed" in letter.error_message

    @pytest.mark.django_db
    def test_issues_cannot_be_deleted_through_rest(self, integration):
        with pytest.raises(PushNotSupported, match="close"):
            self.adapter(integration).delete(
                "acme-corp/widgets#49", idempotency_key="k", if_version=None
            )

    # -- webhooks --------------------------------------------------------------------------

    @pytest.mark.django_db(transaction=True)
    def test_issue_webhooks_land_on_the_records_a_pull_stored(self, integration, rsps, enqueued):
        """Opened / edited / deleted, as recorded by GitHub, keyed like the adapter keys."""
        task = make_task(integration, "issues")
        opened = fixture("github", "webhook_issues_opened").body
        issue = dict(opened["issue"])
        issue["repository_url"] = f"{API}/repos/acme-corp/widgets"
        rsps.add("GET", ISSUES, json=[issue])
        run = run_once(task, enqueued)
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        key = f"acme-corp/widgets#{issue['number']}"
        assert list(records_of(task)) == [key]

        deleted = json.loads(json.dumps(fixture("github", "webhook_issues_deleted").body))
        deleted["issue"]["repository_url"] = issue["repository_url"]
        deleted["issue"]["number"] = issue["number"]
        [event] = parsers.get_parser("github")(
            Delivery(body=deleted, headers={"X-GitHub-Event": "issues"}, config={})
        )
        assert (event.type, event.external_id, event.deleted) == ("issues.deleted", key, True)

        from syncing.reactions.webhook_actions import delete_record
        from webhooks.routing import ActionContext

        context = ActionContext(
            tenant_id=str(integration.tenant_id),
            integration_id=str(integration.pk),
            registration_id="r",
            webhook_event_id="e",
            correlation_id="c",
        )
        assert delete_record(event, context)["outcome"] == "deleted"
        assert records_of(task) == {}

    def test_every_recorded_octokit_issues_and_push_payload_parses(self):
        if not OCTOKIT.exists():
            unavailable("npm packages missing: run `npm ci` in tests/node")
        examples = {e["name"]: e["examples"] for e in json.loads(OCTOKIT.read_text())}
        parse = parsers.get_parser("github")
        for payload in examples["issues"]:
            [event] = parse(Delivery(body=payload, headers={"X-GitHub-Event": "issues"}, config={}))
            issue = payload["issue"]
            repo = issue["repository_url"].split("/repos/", 1)[1]
            assert event.entity_type == "issues"
            assert event.external_id == f"{repo}#{issue['number']}"
            assert event.deleted == (payload["action"] == "deleted")
        for payload in examples["push"]:
            [event] = parse(Delivery(body=payload, headers={"X-GitHub-Event": "push"}, config={}))
            assert (event.entity_type, event.complete) == ("repositories", False)
            assert event.external_id == str(payload["repository"]["id"])

    def test_the_push_fixture_names_its_repository(self):
        [event] = deliver("github", "webhook_push")
        body = fixture("github", "webhook_push").body
        assert (event.type, event.external_id) == ("push", str(body["repository"]["id"]))
