"""Real GitHub payloads (@octokit/webhooks-examples), signed by GitHub's own method
(@octokit/webhooks-methods, run in Node), through the receiver and the processing."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

from tests.support.services import unavailable
from tests.webhooks.support import OCTOKIT_EXAMPLES, REPO
from webhooks import processing
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.embedded, pytest.mark.django_db, pytest.mark.node]

SECRET = "octokit-test-secret"
NODE_DIR = REPO / "tests" / "node"

SIGN_ALL = """
import { sign } from "@octokit/webhooks-methods";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, bodies } = JSON.parse(input);
const signatures = [];
for (const body of bodies) signatures.push(await sign(secret, body));
process.stdout.write(JSON.stringify(signatures));
"""


def octokit_sign(bodies: list[str]) -> list[str]:
    node = shutil.which("node")
    if not node or not (NODE_DIR / "node_modules" / "@octokit" / "webhooks-methods").exists():
        unavailable("node and tests/node/node_modules (npm ci in tests/node) are needed")
    result = subprocess.run(
        [node, "--input-type=module", "-e", SIGN_ALL],
        input=json.dumps({"secret": SECRET, "bodies": bodies}),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def all_examples() -> list[tuple[str, dict]]:
    if not (OCTOKIT_EXAMPLES / "index.json").exists():
        unavailable("@octokit/webhooks-examples is not installed (npm ci in tests/node)")
    index = json.loads((OCTOKIT_EXAMPLES / "index.json").read_text())
    return [(entry["name"], payload) for entry in index for payload in entry["examples"]]


def test_every_octokit_example_is_accepted_and_parsed(client, make_reg, recorded_actions):
    registration = make_reg(scheme="github", secret=SECRET)
    examples = all_examples()
    assert len({name for name, _ in examples}) >= 50
    # GitHub's bytes are whatever it serialised; indentation proves nothing is re-serialised.
    bodies = [json.dumps(payload, indent=2, ensure_ascii=False) for _, payload in examples]
    signatures = octokit_sign(bodies)

    event_ids, repeated, sent = [], 0, set()
    for (name, _), body, signature in zip(examples, bodies, signatures, strict=True):
        response = client.post(
            f"/webhooks/{registration.pk}/",
            data=body.encode(),
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=signature,
            HTTP_X_GITHUB_EVENT=name,
            HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()),
        )
        assert response.status_code == 200, (name, response.content)
        # A few examples repeat another byte for byte: GitHub signs only the body, so the
        # same body under a new delivery id is a replay (tests/webhooks/test_body_replay.py).
        expected = "duplicate" if body in sent else "accepted"
        assert response.json()["status"] == expected, name
        if expected == "accepted":
            event_ids.append(response.json()["event_id"])
        repeated += body in sent
        sent.add(body)
    assert repeated == len(bodies) - len(set(bodies))

    statuses = {processing.event_process(event_id=event_id) for event_id in event_ids}
    assert statuses <= {"processed", "ignored"}
    failed = WebhookEvent.objects.filter(registration=registration, status="failed")
    assert not failed.exists(), list(failed.values_list("event_type", "last_error"))

    issues = WebhookEvent.objects.filter(registration=registration, event_type="issues.opened")
    assert issues.exists() and all(e.entity_type == "issues" and e.external_id for e in issues)
    pushes = WebhookEvent.objects.filter(registration=registration, event_type="push")
    assert pushes.exists() and all(e.entity_type == "repositories" for e in pushes)
    routed = {(name, ev.type.split(".")[0]) for name, ev, _ in recorded_actions}
    assert ("sync.upsert_record", "issues") in routed
    assert ("sync.fetch_entity", "push") in routed


def test_a_tampered_octokit_example_is_rejected(client, make_reg):
    registration = make_reg(scheme="github", secret=SECRET)
    _, payload = next(e for e in all_examples() if e[0] == "issues")
    body = json.dumps(payload)
    [signature] = octokit_sign([body])
    response = client.post(
        f"/webhooks/{registration.pk}/",
        data=body.replace('"opened"', '"closed"', 1).encode() if '"opened"' in body else body[:-1],
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
        HTTP_X_GITHUB_EVENT="issues",
        HTTP_X_GITHUB_DELIVERY=str(uuid.uuid4()),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
