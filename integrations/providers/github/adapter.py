"""GitHub REST v3: pull issues and repositories, create and update issues.

Config (``Integration.config``): ``repository`` (``owner/name``, needed for issues),
``organization`` (repositories: the organisation's; without it the authenticated user's),
``api_base`` (GitHub Enterprise Server: ``https://HOST/api/v3``), ``page_size`` (1-100).

* **Keys.** An issue is keyed ``owner/repo#number`` — GitHub's own cross-reference notation —
  because every REST call on an issue needs its repository and number (there is no lookup by
  the global ``id``), and numbers alone collide across repositories. The webhook parser
  (``integrations/providers/github/webhooks.py``) names issues the same way. Repositories are
  keyed by their numeric ``id`` (stable across renames).
* **Paging.** ``Link`` headers, followed verbatim (only on the API's own origin) by the shared
  :class:`~integrations.adapters.pagination.LinkHeaderPagination`; issues are
  listed ``sort=updated&direction=asc`` with ``since`` = the watermark, so an incremental run
  reads what changed. Pull requests come back from the issues endpoint too and are skipped.
* **Limits and errors.** 403/429 are rate limits when ``x-ratelimit-remaining`` is 0 (wait for
  ``x-ratelimit-reset``), ``Retry-After`` is present, or the message names a secondary rate
  limit (then at least 60 s, as GitHub asks); any other 403 is a permission problem, reported
  as a missing scope when ``X-Accepted-OAuth-Scopes`` names one the token lacks.
* **Creates.** GitHub has no idempotency keys: the issue body carries a hidden marker
  (``<!-- castiel:<key> -->``, invisible in rendered Markdown) and a retried create looks for
  it among the repository's 50 newest issues before creating again.
* **Deletes.** The REST API cannot delete issues (only close them: push ``state: closed``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from castiel.http.errors import RateLimitedError, classify
from integrations.adapters import errors as E
from integrations.adapters.base import (
    AdapterConfigError,
    MalformedPage,
    Page,
    PushNotSupported,
    PushResult,
)
from integrations.adapters.errors import provider_error
from integrations.adapters.pagination import LinkHeaderPagination
from integrations.adapters.provider import (
    ProviderAdapter,
    first_text,
    missing_scopes,
    split_scopes,
)

REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
ORGANIZATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
ISSUE_KEY = re.compile(r"^(?P<repo>[^#\s]+/[^#\s]+)#(?P<number>\d+)$")
MARKER = "<!-- castiel:{key} -->"
MARKER_SCAN = 50
# GitHub: "If you exceed a secondary rate limit [and there is no retry-after header], wait
# for at least one minute before retrying."
SECONDARY_WAIT = 60.0
API_VERSION = "2022-11-28"
# What an issue write may carry (everything else in a pulled issue is GitHub's).
ISSUE_WRITABLE = (
    "title",
    "body",
    "assignee",
    "assignees",
    "state",
    "state_reason",
    "milestone",
    "labels",
)


def validate_config(config: dict) -> dict[str, str]:
    errors = {}
    repository = config.get("repository")
    if repository not in (None, "") and (
        not isinstance(repository, str) or not REPOSITORY.match(repository)
    ):
        errors["repository"] = "repository must be 'owner/name', e.g. 'acme-corp/widgets'."
    organization = config.get("organization")
    if organization not in (None, "") and (
        not isinstance(organization, str) or not ORGANIZATION.match(organization)
    ):
        errors["organization"] = "organization must be a GitHub organisation login."
    api_base = config.get("api_base")
    if api_base not in (None, ""):
        parts = urlsplit(str(api_base))
        if parts.scheme != "https" or not parts.netloc:
            errors["api_base"] = "api_base must be an https URL (GitHub Enterprise: .../api/v3)."
    page_size = config.get("page_size")
    if page_size is not None and (
        not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 100
    ):
        errors["page_size"] = "page_size must be an integer from 1 to 100."
    return errors


def issue_key(issue: dict) -> str | None:
    """``owner/repo#number`` for an issue object (API or webhook payload)."""
    number = issue.get("number")
    url = issue.get("repository_url") or ""
    path = urlsplit(url).path
    marker = "/repos/"
    if number is None or marker not in path:
        return None
    repo = path.split(marker, 1)[1].strip("/")
    return f"{repo}#{number}" if repo.count("/") == 1 else None


class GitHubAdapter(ProviderAdapter):
    push_entities = ("issues",)

    def default_headers(self):
        return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}

    @property
    def repository(self) -> str:
        return str(self.config.get("repository") or "")

    @property
    def page_size(self) -> int:
        return int(self.config.get("page_size") or 100)

    def validate_entity(self):
        if self.entity_type == "issues" and not self.repository:
            raise AdapterConfigError(
                "GitHub issues need config 'repository' ('owner/name', e.g. 'acme-corp/widgets')"
            )

    # -- pull ----------------------------------------------------------------------------

    @property
    def paginator(self) -> LinkHeaderPagination:
        """The shared ``Link`` paginator: follows rel="next" verbatim, only on the API's own
        origin; the first request asks ``per_page`` and no page number (GitHub's default)."""
        return LinkHeaderPagination(
            {"page_param": "", "size_param": "per_page", "page_size": self.page_size},
            origin=self.origin,
        )

    def validate_cursor(self, cursor):
        self.check_cursor_keys(cursor, url=str)
        self.paginator.validate_cursor(cursor)

    def fetch_page(self, cursor, *, since=None) -> Page:
        self.require_pull()
        self.validate_cursor(cursor)
        paginator = self.paginator
        next_url, paging = paginator.request(cursor, since)
        if next_url:
            response = self.request("GET", next_url)
        elif self.entity_type == "issues":
            params = {"state": "all", "sort": "updated", "direction": "asc", **paging}
            if since:
                params["since"] = since
            response = self.request("GET", f"/repos/{self.repository}/issues", params=params)
        else:
            organization = self.config.get("organization")
            path = f"/orgs/{organization}/repos" if organization else "/user/repos"
            params = {"sort": "updated", "direction": "asc", **paging}
            if organization:
                params["type"] = "all"
            response = self.request("GET", path, params=params)
        body = self.json(response)
        if not isinstance(body, list):
            raise MalformedPage(f"GitHub answered {type(body).__name__}, expected a list")
        records = body
        skipped = 0
        if self.entity_type == "issues":
            # The issues endpoints return pull requests too; they are not issues.
            records = [r for r in body if isinstance(r, dict) and "pull_request" not in r]
            skipped = len(body) - len(records)
        return Page(
            records=records,
            next_cursor=paginator.next_cursor(cursor, response, body, body),
            rate_limit=self.rate_limit_info(response),
            info={"status": response.status_code, "skipped_pull_requests": skipped},
        )

    def external_id(self, record):
        if self.entity_type == "issues":
            return issue_key(record)
        value = record.get("id")
        return None if value is None else str(value)

    def updated_at(self, record):
        return record.get("updated_at")

    def remote_version(self, record):
        return record.get("updated_at")

    @property
    def identity_fields(self):
        return ("id", "node_id", "number", "updated_at")

    # -- push ----------------------------------------------------------------------------

    supports_idempotency_keys = False

    @property
    def can_find_created(self) -> bool:
        return self.entity_type == "issues"

    def _issue_path(self, external_id: str) -> str:
        match = ISSUE_KEY.match(external_id or "")
        if not match:
            raise AdapterConfigError(f"{external_id!r} is not a GitHub issue key (owner/repo#N)")
        repo = "/".join(quote(part, safe="") for part in match["repo"].split("/"))
        return f"/repos/{repo}/issues/{match['number']}"

    def writable(self, payload: dict) -> dict:
        """The fields GitHub accepts, in the shape it accepts them (pulled issues carry label
        and user objects; writes take names and logins)."""
        body: dict[str, Any] = {}
        for key in ISSUE_WRITABLE:
            if key not in payload:
                continue
            value = payload[key]
            if key == "labels" and isinstance(value, list):
                value = [v.get("name") if isinstance(v, dict) else v for v in value]
            elif key == "assignees" and isinstance(value, list):
                value = [v.get("login") if isinstance(v, dict) else v for v in value]
            elif key == "assignee" and isinstance(value, dict):
                value = value.get("login")
            elif key == "milestone" and isinstance(value, dict):
                value = value.get("number")
            body[key] = value
        return body

    def get_one(self, external_id):
        self.require_push("read")
        try:
            response = self.request("GET", self._issue_path(external_id))
        except E.ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        issue = self.json(response)
        return PushResult(
            external_id=issue_key(issue) or external_id,
            record=issue,
            version=issue.get("updated_at"),
            status=response.status_code,
        )

    def create(self, payload, *, idempotency_key):
        self.require_push("create")
        # No title: GitHub answers its documented 422 (error_validation_failed), which says
        # exactly that; no second-guessing here.
        body = self.writable(payload)
        marker = MARKER.format(key=idempotency_key)
        text = body.get("body") or ""
        if marker not in text:
            body["body"] = f"{text}\n\n{marker}" if text else marker
        body.pop("state", None)  # a new issue is open; state_reason needs a state
        body.pop("state_reason", None)
        response = self.request(
            "POST",
            f"/repos/{self.repository}/issues",
            operation="create",
            record=True,
            json=body,
        )
        issue = self.json(response)
        return PushResult(
            external_id=issue_key(issue),
            record=issue,
            version=issue.get("updated_at"),
            status=response.status_code,
        )

    def update(self, external_id, payload, *, idempotency_key, if_version=None):
        self.require_push("update")
        response = self.request(
            "PATCH",
            self._issue_path(external_id),
            operation="update",
            record=True,
            json=self.writable(payload),
        )
        issue = self.json(response)
        return PushResult(
            external_id=issue_key(issue) or external_id,
            record=issue,
            version=issue.get("updated_at"),
            status=response.status_code,
        )

    def delete(self, external_id, *, idempotency_key, if_version=None):
        raise PushNotSupported(
            "GitHub's REST API cannot delete issues; close them instead (update state: closed)"
        )

    def find_created(self, idempotency_key, *, payload=None):
        if not self.can_find_created:
            return None
        marker = MARKER.format(key=idempotency_key)
        response = self.request(
            "GET",
            f"/repos/{self.repository}/issues",
            params={
                "state": "all",
                "sort": "created",
                "direction": "desc",
                "per_page": MARKER_SCAN,
            },
        )
        for issue in self.json(response) or []:
            if isinstance(issue, dict) and marker in (issue.get("body") or ""):
                return issue
        return None

    # -- errors and test connection -------------------------------------------------------

    def error_for(self, response, *, what):
        status = response.status_code
        if status < 400:
            return None
        body = self.body_of(response)
        body = body if isinstance(body, dict) else {}
        message = first_text(body.get("message"))
        headers = response.headers
        base = classify(response, what=what)
        if status in (403, 429):
            secondary = "secondary rate limit" in message.lower()
            if isinstance(base, RateLimitedError) or secondary:
                retry_after = base.retry_after if base is not None else None
                if retry_after is None and (secondary or status == 429):
                    retry_after = SECONDARY_WAIT
                return provider_error(
                    response,
                    what=what,
                    message=message,
                    rate_limited=True,
                    retry_after=retry_after,
                    details={"resource": headers.get("x-ratelimit-resource", "")},
                )
        details: dict[str, Any] = {}
        reason = None
        if body.get("documentation_url"):
            details["documentation_url"] = body["documentation_url"]
        if status == 422 and isinstance(body.get("errors"), list):
            details["errors"] = body["errors"]
            reason = E.VALIDATION_FAILED
        if status == 403:
            accepted = split_scopes(headers.get("x-accepted-oauth-scopes"))
            granted = split_scopes(headers.get("x-oauth-scopes"))
            if accepted and "x-oauth-scopes" in headers and not set(accepted) & set(granted):
                reason = E.MISSING_SCOPE
                details.update(required_scopes=accepted, granted_scopes=granted)
        if status == 404:
            message = (
                f"{message or 'Not Found'} (GitHub answers 404 when the repository does not "
                "exist or the token cannot see it)"
            )
        return provider_error(response, what=what, reason=reason, message=message, details=details)

    def connection_details(self, response):
        user = self.json(response)
        granted = split_scopes(response.headers.get("x-oauth-scopes"))
        details = {"login": user.get("login"), "account_type": user.get("type")}
        if "x-oauth-scopes" in response.headers:
            # Classic tokens and OAuth apps report their scopes; fine-grained tokens do not.
            details["granted_scopes"] = granted
            details["missing_scopes"] = missing_scopes(granted, self.expected_scopes)
        return details
