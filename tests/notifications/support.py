"""A local HTTP server playing Slack, Teams and a tenant's webhook receiver, and the validators
every message the tests produce goes through (slack_sdk's models, Microsoft's adaptivecards
npm package)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from slack_sdk.models.blocks import Block

from tests.support.httpserver import Recorded, running_server
from tests.support.services import unavailable

NODE_MODULES = Path(__file__).resolve().parents[1] / "node" / "node_modules"
VALIDATOR = Path(__file__).with_name("validate_cards.cjs")

SLACK_PATH = "/services/T000CAST/B000CAST/XXXXsecretXXXX"
TEAMS_PATH = "/workflows/0c1d/triggers/manual/paths/invoke"
WEBHOOK_PATH = "/hooks/castiel"


@dataclass
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: object = "ok"
    delay: float = 0.0  # seconds before answering (a timeout when above the client's)


class FakeChat:
    """Routes for Slack (``SLACK_PATH``), Teams (``TEAMS_PATH``) and a webhook receiver.

    ``script(path, *answers)`` queues answers for a path (the default answer is Slack's
    ``200 ok`` / Teams' ``202``); ``outage`` is a callable returning an answer while it lasts.
    """

    def __init__(self, server):
        self.server = server
        self.url = server.url
        self.scripts: dict[str, deque] = {
            p: deque() for p in (SLACK_PATH, TEAMS_PATH, WEBHOOK_PATH)
        }
        self.outage = None
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int, Recorded]] = []  # (path, status, request)
        defaults = {
            SLACK_PATH: Answer(200, {}, "ok"),
            TEAMS_PATH: Answer(202, {}, ""),
            WEBHOOK_PATH: Answer(204, {}, ""),
        }
        for path, default in defaults.items():
            server.route("POST", path)(self._handler(path, default))

    def _handler(self, path: str, default: Answer):
        def handle(request: Recorded):
            with self.lock:
                answer = self.scripts[path].popleft() if self.scripts[path] else None
            if answer is None and self.outage is not None:
                answer = self.outage(path)
            answer = answer or default
            with self.lock:
                self.answered.append((path, answer.status, request))
            if answer.delay:
                time.sleep(answer.delay)
            return answer.status, answer.headers, answer.body

        return handle

    def script(self, path: str, *answers: Answer) -> None:
        with self.lock:
            self.scripts[path].extend(answers)

    @property
    def slack_url(self) -> str:
        return self.url + SLACK_PATH

    @property
    def teams_url(self) -> str:
        return self.url + TEAMS_PATH

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def received(self, path: str) -> list[Recorded]:
        return [r for r in self.server.requests if r.path == path and r.method == "POST"]

    def answers(self, path: str) -> list[tuple[str, int]]:
        """(message text, status answered) for every request to ``path``, in order."""
        return [(r.json().get("text", ""), status) for p, status, r in self.answered if p == path]

    def bodies(self, path: str) -> list[dict]:
        return [r.json() for r in self.received(path)]


def running_chat():
    """Context manager yielding a :class:`FakeChat` on 127.0.0.1."""

    class _Running:
        def __enter__(self):
            self.inner = running_server()
            return FakeChat(self.inner.__enter__())

        def __exit__(self, *exc):
            self.inner.__exit__(*exc)

    return _Running()


# -- validators ----------------------------------------------------------------------------------


def assert_valid_slack(payload: dict) -> None:
    """Every block parses into slack_sdk's models and passes their validation; Slack's
    message-level limits hold."""
    assert isinstance(payload.get("text"), str) and payload["text"]
    blocks = payload.get("blocks") or []
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError on any limit
        assert block.to_dict() == raw, (block.to_dict(), raw)


def validate_cards(cards: list[dict]) -> list[dict]:
    """Parse every card with Microsoft's adaptivecards package (Node.js)."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "adaptivecards").exists():
        unavailable("node and tests/node's adaptivecards package are needed (npm ci in tests/node)")
    done = subprocess.run(
        [node, str(VALIDATOR), str(NODE_MODULES)],
        input=json.dumps(cards),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_valid_teams(payloads: list[dict]) -> None:
    cards = []
    for payload in payloads:
        assert payload["type"] == "message"
        (attachment,) = payload["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert len(json.dumps(payload).encode()) <= 28_000
        cards.append(attachment["content"])
    if not cards:
        return
    results = validate_cards(cards)
    for card, result in zip(cards, results, strict=True):
        assert result == {"version": "1.4", "problems": []}, (result, card)
