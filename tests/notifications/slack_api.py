"""A local HTTP server playing the Slack Web API methods the Slack bot channel uses:
``chat.postMessage``, ``chat.update`` and ``conversations.history`` — with Slack's documented
answers (https://docs.slack.dev/reference/methods/chat.postMessage, …/chat.update,
…/conversations.history): HTTP 200 with ``{"ok": true, …}`` or ``{"ok": false, "error": …}``,
and ``429`` ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After``.

It keeps the messages it accepted per conversation, so a test asserts what a Slack user would
see in the channel, not only what was sent.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from contextlib import contextmanager

from tests.support.httpserver import Recorded, running_server

TOKEN = "xoxb-test-bot-token-not-real"  # a test fixture, not a secret
BOT_ID = "B07CASTIEL1"


class FakeSlackApi:
    def __init__(self, server, *, members: set[str]):
        self.server = server
        self.url = server.url + "/api"
        self.members = set(members)  # conversations the bot is in
        self.channels: dict[str, list[dict]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.scripts: dict[str, deque] = {}
        self.lock = threading.Lock()
        self._ts = itertools.count(1)
        for method in ("chat.postMessage", "chat.update"):
            server.route("POST", f"/api/{method}")(self._handler(method))
        server.route("GET", "/api/conversations.history")(self._handler("conversations.history"))

    # -- scripting ------------------------------------------------------------------------

    def script(self, method: str, *answers) -> None:
        """Answers for the next calls of ``method``: ``(status, headers, body)`` to answer
        instead of the method, or ``("store-then-sleep", seconds)`` to do the work and answer
        late (a lost answer when the client's timeout is shorter)."""
        with self.lock:
            self.scripts.setdefault(method, deque()).extend(answers)

    def messages(self, conversation: str) -> list[dict]:
        with self.lock:
            return [dict(m) for m in self.channels.get(conversation, [])]

    def called(self, method: str) -> list[dict]:
        return [body for name, body in self.calls if name == method]

    # -- the methods ----------------------------------------------------------------------

    def _handler(self, method: str):
        def handle(request: Recorded):
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            body = request.json() if request.method == "POST" else _query(request)
            with self.lock:
                self.calls.append((method, body))
                queue = self.scripts.get(method)
                scripted = queue.popleft() if queue else None
            late = 0.0
            if scripted is not None and scripted[0] == "store-then-sleep":
                late = scripted[1]
            elif scripted is not None:
                return scripted
            answer = getattr(self, "_" + method.replace(".", "_"))(body)
            if late:
                time.sleep(late)
            return 200, {}, answer

        return handle

    def _chat_postMessage(self, body: dict) -> dict:
        conversation = body.get("channel")
        if conversation not in self.members:
            return {"ok": False, "error": "not_in_channel"}
        ts = f"17330000{next(self._ts):02d}.000100"
        message = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": BOT_ID,
            "text": body.get("text", ""),
            "blocks": body.get("blocks", []),
            "ts": ts,
        }
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        if body.get("metadata"):
            message["metadata"] = body["metadata"]
        with self.lock:
            self.channels.setdefault(conversation, []).append(message)
        return {"ok": True, "channel": conversation, "ts": ts, "message": dict(message)}

    def _chat_update(self, body: dict) -> dict:
        conversation, ts = body.get("channel"), body.get("ts")
        with self.lock:
            for message in self.channels.get(conversation, []):
                if message["ts"] == ts:
                    message.update(text=body.get("text", ""), blocks=body.get("blocks", []))
                    message["edited"] = {"user": BOT_ID, "ts": f"{time.time():.6f}"}
                    answer = {k: v for k, v in message.items() if k != "metadata"}
                    return {
                        "ok": True,
                        "channel": conversation,
                        "ts": ts,
                        "text": message["text"],
                        "message": answer,
                    }
        return {"ok": False, "error": "message_not_found"}

    def _conversations_history(self, query: dict) -> dict:
        conversation = query.get("channel")
        if conversation not in self.members:
            return {"ok": False, "error": "not_in_channel"}
        with self.lock:
            found = list(reversed(self.channels.get(conversation, [])))  # newest first
        if query.get("include_all_metadata") != "true":
            found = [{k: v for k, v in m.items() if k != "metadata"} for m in found]
        limit = int(query.get("limit") or 100)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}


def _query(request: Recorded) -> dict:
    return {k: v[-1] for k, v in request.query.items()}


@contextmanager
def running_slack(*, members=("C06K1M3P5R7",)):
    with running_server() as server:
        yield FakeSlackApi(server, members=set(members))
