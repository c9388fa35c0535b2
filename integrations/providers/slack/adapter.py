"""Slack Web API: pull users and conversations; post, edit and delete messages.

Config (``Integration.config``): ``page_size`` (1-1000, Slack recommends 200),
``conversation_types`` (default ``public_channel,private_channel``), ``exclude_archived``.

* **Pull.** ``users.list`` → ``members`` and ``conversations.list`` → ``channels``, cursor
  paging (``response_metadata.next_cursor``; empty ends the list). Neither method filters by
  time, so every run lists everything (unchanged records are no writes) and the Events API
  brings changes in between. A deactivated user (``deleted: true``) is a tombstone.
* **Push.** The ``messages`` entity is the outbound action "post a message": a local record
  ``{"channel": "C…", "text": "…"}`` (optionally ``blocks``, ``thread_ts``, ``username`` …)
  is created with ``chat.postMessage``, edited with ``chat.update``, removed with
  ``chat.delete``; its key is ``<channel>:<ts>``. Slack has no idempotency keys, so every post
  carries the change's key in its message metadata (``event_type`` ``castiel_message``,
  ``event_payload.castiel_id``), and a retried post first reads the channel's recent history
  (``conversations.history`` with ``include_all_metadata``): the message an attempt whose
  answer was lost posted is adopted instead of posted twice. (A message whose record brings
  its own ``metadata`` keeps it and goes without the marker; without history scopes the
  check is skipped with a warning.)
* **Errors** come as HTTP 200 with ``{"ok": false, "error": "<code>"}``; the adapter reads
  ``ok`` on every answer and reports the code with the status it stands for (``invalid_auth``
  401, ``missing_scope`` 403 with ``needed``/``provided``, ``channel_not_found`` 404 …). With
  token rotation, ``token_expired`` refreshes the credential once and retries.
* **Limits.** Per method per workspace (tiers); over it, HTTP 429 with ``Retry-After``, which
  the shared classification turns into a wait.
"""

from __future__ import annotations

from typing import Any

from castiel.observability.logging import get_logger
from integrations.adapters import errors as E
from integrations.adapters.base import AdapterConfigError, MalformedPage, Page, PushResult
from integrations.adapters.errors import provider_error
from integrations.adapters.provider import (
    ProviderAdapter,
    missing_scopes,
    split_scopes,
)

log = get_logger(__name__)

LIST = {
    "users": ("users.list", "members"),
    "conversations": ("conversations.list", "channels"),
}
# Slack error code → (reason, the HTTP status it stands for).
ERRORS: dict[str, tuple[str, int]] = {
    "invalid_auth": (E.INVALID_CREDENTIALS, 401),
    "not_authed": (E.INVALID_CREDENTIALS, 401),
    "token_revoked": (E.INVALID_CREDENTIALS, 401),
    "token_expired": (E.INVALID_CREDENTIALS, 401),
    "account_inactive": (E.INVALID_CREDENTIALS, 401),
    "missing_scope": (E.MISSING_SCOPE, 403),
    "not_allowed_token_type": (E.FORBIDDEN, 403),
    "no_permission": (E.FORBIDDEN, 403),
    "not_in_channel": (E.FORBIDDEN, 403),
    "is_archived": (E.FORBIDDEN, 403),
    "restricted_action": (E.FORBIDDEN, 403),
    "ekm_access_denied": (E.FORBIDDEN, 403),
    "cant_update_message": (E.FORBIDDEN, 403),
    "cant_delete_message": (E.FORBIDDEN, 403),
    "channel_not_found": (E.NOT_FOUND, 404),
    "user_not_found": (E.NOT_FOUND, 404),
    "message_not_found": (E.NOT_FOUND, 404),
    "thread_not_found": (E.NOT_FOUND, 404),
    "invalid_cursor": (E.BAD_REQUEST, 400),
    "invalid_arguments": (E.BAD_REQUEST, 400),
    "no_text": (E.VALIDATION_FAILED, 422),
    "msg_too_long": (E.VALIDATION_FAILED, 422),
    "invalid_blocks": (E.VALIDATION_FAILED, 422),
    "too_many_attachments": (E.VALIDATION_FAILED, 422),
    "ratelimited": (E.RATE_LIMITED, 429),
    "fatal_error": (E.UNAVAILABLE, 503),
    "internal_error": (E.UNAVAILABLE, 503),
    "service_unavailable": (E.UNAVAILABLE, 503),
    "request_timeout": (E.UNAVAILABLE, 503),
}
MESSAGE_WRITABLE = (
    "text",
    "blocks",
    "attachments",
    "thread_ts",
    "reply_broadcast",
    "mrkdwn",
    "unfurl_links",
    "unfurl_media",
    "username",
    "icon_emoji",
    "icon_url",
    "metadata",
)
# The message metadata event type that marks Castiel's posts (find_created).
MARKER_EVENT = "castiel_message"
# chat.update takes fewer options than chat.postMessage.
UPDATE_WRITABLE = ("text", "blocks", "attachments", "reply_broadcast", "metadata")


def validate_config(config: dict) -> dict[str, str]:
    errors = {}
    size = config.get("page_size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1000
    ):
        errors["page_size"] = "page_size must be an integer from 1 to 1000."
    types = config.get("conversation_types")
    if types not in (None, "") and not isinstance(types, str):
        errors["conversation_types"] = "conversation_types is a comma-separated string."
    return errors


def message_key(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def split_message_key(key: str) -> tuple[str, str]:
    channel, sep, ts = str(key).partition(":")
    if not sep or not channel or not ts:
        raise AdapterConfigError(f"{key!r} is not a Slack message key (<channel>:<ts>)")
    return channel, ts


class SlackAdapter(ProviderAdapter):
    pull_entities = ("users", "conversations")
    push_entities = ("messages",)

    def default_headers(self):
        return {"Accept": "application/json"}

    # -- pull ----------------------------------------------------------------------------

    def validate_cursor(self, cursor):
        self.check_cursor_keys(cursor, cursor=str)

    def fetch_page(self, cursor, *, since=None) -> Page:
        self.require_pull()
        self.validate_cursor(cursor)
        method, key = LIST[self.entity_type]
        params: dict[str, Any] = {"limit": int(self.config.get("page_size") or 200)}
        if self.entity_type == "conversations":
            params["types"] = self.config.get("conversation_types") or (
                "public_channel,private_channel"
            )
            params["exclude_archived"] = "true" if self.config.get("exclude_archived") else "false"
        if cursor and cursor.get("cursor"):
            params["cursor"] = cursor["cursor"]
        response = self.call("GET", method, params=params)
        body = self.json(response)
        records = body.get(key)
        if not isinstance(records, list):
            raise MalformedPage(f"Slack {method} answered without '{key}'")
        token = (body.get("response_metadata") or {}).get("next_cursor") or ""
        return Page(
            records=[r for r in records if isinstance(r, dict)],
            next_cursor={"cursor": token} if token else None,
            rate_limit=self.rate_limit_info(response),
            info={"status": response.status_code},
        )

    def call(self, http_method: str, method: str, **kwargs):
        """One Web API method; ``token_expired`` (token rotation) refreshes once and retries."""
        try:
            return self.request(http_method, f"/{method}", **kwargs)
        except E.ProviderError as exc:
            if exc.provider_code != "token_expired" or exc.response is None:
                raise
            refresh = getattr(self.client.auth, "on_unauthorized", None)
            if refresh is None or not refresh(exc.response):
                raise
            return self.request(http_method, f"/{method}", **kwargs)

    def external_id(self, record):
        if self.entity_type == "messages":
            channel, ts = record.get("channel"), record.get("ts")
            return message_key(channel, ts) if channel and ts else None
        value = record.get("id")
        return str(value) if value else None

    def updated_at(self, record):
        if self.entity_type == "messages":
            return (record.get("edited") or {}).get("ts") or record.get("ts")
        value = record.get("updated")
        return None if value in (None, "") else str(value)

    def is_deleted(self, record):
        return self.entity_type == "users" and record.get("deleted") is True

    @property
    def identity_fields(self):
        return ("id", "updated", "ts")

    # -- push: messages ------------------------------------------------------------------

    def _message(self, body: dict, fallback_channel: str | None = None) -> PushResult:
        channel = body.get("channel") or fallback_channel
        message = dict(body.get("message") or {})
        ts = body.get("ts") or message.get("ts")
        if not channel or not ts:
            raise MalformedPage("Slack answered without channel and ts")
        message.setdefault("ts", ts)
        message["channel"] = channel
        return PushResult(
            external_id=message_key(channel, ts),
            record=message,
            version=(message.get("edited") or {}).get("ts") or ts,
        )

    @property
    def can_find_created(self) -> bool:
        return self.entity_type == "messages"

    def find_created(self, idempotency_key, *, payload=None):
        """The message an earlier attempt posted: the channel's recent history, by the key in
        its metadata (a retry follows the lost answer within minutes; 200 messages back)."""
        channel = (payload or {}).get("channel")
        if not channel:
            return None
        try:
            response = self.call(
                "GET",
                "conversations.history",
                params={"channel": channel, "include_all_metadata": "true", "limit": 200},
            )
        except E.ProviderError as exc:
            if exc.reason in (E.MISSING_SCOPE, E.FORBIDDEN):
                log.warning("slack.history_unreadable", error=exc.provider_code or exc.reason)
                return None
            raise
        for message in self.json(response).get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == MARKER_EVENT
                and (metadata.get("event_payload") or {}).get("castiel_id") == idempotency_key
            ):
                return {**message, "channel": channel}
        return None

    def create(self, payload, *, idempotency_key):
        self.require_push("create")
        channel = payload.get("channel")
        if not channel:
            raise AdapterConfigError("a Slack message needs a 'channel' (id, e.g. C06K1M3P5R7)")
        body = {k: payload[k] for k in MESSAGE_WRITABLE if payload.get(k) is not None}
        body["channel"] = channel
        body.setdefault(
            "metadata",
            {"event_type": MARKER_EVENT, "event_payload": {"castiel_id": idempotency_key}},
        )
        response = self.call("POST", "chat.postMessage", operation="create", record=True, json=body)
        return self._message(self.json(response), channel)

    def update(self, external_id, payload, *, idempotency_key, if_version=None):
        self.require_push("update")
        channel, ts = split_message_key(external_id)
        body = {k: payload[k] for k in UPDATE_WRITABLE if k in payload}
        body.update(channel=channel, ts=ts)
        response = self.call("POST", "chat.update", operation="update", record=True, json=body)
        answer = self.json(response)
        result = self._message(answer, channel)
        if not (answer.get("message") or {}).get("text") and "text" in body:
            result.record["text"] = body["text"]
        return result

    def delete(self, external_id, *, idempotency_key, if_version=None):
        self.require_push("delete")
        channel, ts = split_message_key(external_id)
        self.call(
            "POST",
            "chat.delete",
            operation="delete",
            record=True,
            json={"channel": channel, "ts": ts},
        )
        return PushResult(external_id=external_id, record=None)

    def get_one(self, external_id):
        self.require_push("read")
        channel, ts = split_message_key(external_id)
        try:
            response = self.call(
                "GET",
                "conversations.history",
                params={"channel": channel, "latest": ts, "oldest": ts, "inclusive": "true"},
            )
        except E.ProviderError as exc:
            if exc.status == 404:
                return None
            raise
        for message in self.json(response).get("messages") or []:
            if message.get("ts") == ts:
                message = {**message, "channel": channel}
                return PushResult(
                    external_id=external_id,
                    record=message,
                    version=(message.get("edited") or {}).get("ts") or ts,
                )
        return None

    # -- errors and test connection -------------------------------------------------------

    def error_for(self, response, *, what):
        status = response.status_code
        body = self.body_of(response)
        body = body if isinstance(body, dict) else {}
        if status < 400 and body.get("ok") is not False:
            return None
        code = str(body.get("error") or "")
        if status == 429 or code == "ratelimited":
            return provider_error(
                response, what=what, provider_code=code or "ratelimited", rate_limited=True
            )
        if status >= 400 and not code:
            return provider_error(response, what=what)
        reason, meant = ERRORS.get(code, (E.PROVIDER_ERROR, 400))
        details: dict[str, Any] = {}
        if body.get("needed"):
            details["required_scopes"] = split_scopes(body["needed"])
        if body.get("provided") is not None:
            details["granted_scopes"] = split_scopes(body.get("provided"))
        if body.get("response_metadata", {}).get("messages"):
            details["messages"] = body["response_metadata"]["messages"]
        message = code
        if code == "missing_scope" and body.get("needed"):
            message = f"missing_scope: the token needs {body['needed']}"
        return provider_error(
            response,
            what=what,
            reason=reason,
            provider_code=code,
            message=message,
            details=details,
            status=meant if status < 400 else status,
            # ok:false with HTTP 200 is never worth retrying unless Slack says it is down.
            retryable=True
            if reason == E.UNAVAILABLE or status >= 500
            else (False if status < 400 else None),
        )

    def check_connection(self):
        response = self.call("POST", "auth.test")
        return self.connection_details(response)

    def connection_details(self, response):
        body = self.json(response)
        details = {
            "team": body.get("team"),
            "team_id": body.get("team_id"),
            "user": body.get("user"),
            "bot_id": body.get("bot_id"),
        }
        if "x-oauth-scopes" in response.headers:
            granted = split_scopes(response.headers.get("x-oauth-scopes"))
            details["granted_scopes"] = granted
            details["missing_scopes"] = missing_scopes(granted, self.expected_scopes)
        return details
