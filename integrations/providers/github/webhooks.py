"""GitHub webhook events: ``X-GitHub-Event`` names the event, ``action`` in the body refines it.

``issues`` → entity ``issues``: the payload carries the whole issue (upsert), keyed as the
adapter keys issues, ``owner/repo#number`` (every REST call on an issue needs its repository
and number), so ``issues.deleted`` removes the very record a pull stored. ``push`` → entity
``repositories`` named by its ``id`` as the adapter does: commits changed, the repository must
be fetched. Other events are parsed generically (``<event>.<action>``, the object named like
the event when there is one) and stored, not acted on, until a row is added here.
"""

from __future__ import annotations

from integrations.adapters.normalize import parse_timestamp
from integrations.webhook_events import (
    EVALUATE_RULES,
    FETCH_ENTITY,
    Delivery,
    Event,
    EventTable,
    NormalisedEvent,
    ParseError,
)

from .adapter import issue_key

# The folder name is the slug (a copied folder names its own events).
PROVIDER = __package__.rsplit(".", 1)[-1]


def _issue(issue) -> str | None:
    if not isinstance(issue, dict):
        return None
    return issue_key(issue) or (str(issue["id"]) if issue.get("id") is not None else None)


EVENTS = EventTable(
    Event("issues", "issues", id="issue", key=_issue, types="issues.*", complete=True),
    Event("issues", "issues", id="issue", key=_issue, types="issues.deleted", deleted=True),
    Event(
        "push",
        "repositories",
        id="repository.id",
        actions=(FETCH_ENTITY, EVALUATE_RULES),
    ),
)


@EVENTS.parser
def parse(delivery: Delivery) -> list[NormalisedEvent]:
    name = delivery.header("X-GitHub-Event")
    body = delivery.body
    if not name:
        raise ParseError("X-GitHub-Event header missing")
    if not isinstance(body, dict):
        raise ParseError("GitHub payload is not a JSON object")
    action = body.get("action")
    event_type = f"{name}.{action}" if isinstance(action, str) and action else name
    event_id = delivery.header("X-GitHub-Delivery") or ""
    row = EVENTS.row(event_type)
    # The object named like the event, when there is one (a milestone event: body.milestone).
    subject = body.get(name)
    payload = subject if isinstance(subject, dict) else {}
    occurred_at = parse_timestamp(payload.get("updated_at"))

    if name == "issues":
        issue = body.get("issue")
        if not isinstance(issue, dict) or "id" not in issue:
            raise ParseError("issues event without an issue")
        payload = dict(issue)
        if isinstance(body.get("repository"), dict):
            payload.setdefault("repository_full_name", body["repository"].get("full_name"))
        occurred_at = parse_timestamp(issue.get("updated_at"))
    elif name == "push":
        repository = body.get("repository")
        if not isinstance(repository, dict) or "id" not in repository:
            raise ParseError("push event without a repository")
        head = body.get("head_commit") if isinstance(body.get("head_commit"), dict) else {}
        payload = {
            "repository": repository,
            "ref": body.get("ref"),
            "before": body.get("before"),
            "after": body.get("after"),
            "commits": body.get("commits") or [],
        }
        occurred_at = parse_timestamp(head.get("timestamp"))
    if row is not None:
        return [
            NormalisedEvent(
                provider=PROVIDER,
                type=event_type,
                entity_type=row.entity_type,
                external_id=row.record_id(body),
                payload=payload,
                occurred_at=occurred_at,
                complete=row.complete,
                deleted=row.deleted,
                event_id=event_id,
            )
        ]

    if isinstance(subject, dict) and "id" in subject:
        return [
            NormalisedEvent(
                provider=PROVIDER,
                type=event_type,
                entity_type=name,
                external_id=str(subject["id"]),
                payload=subject,
                occurred_at=occurred_at,
                event_id=event_id,
            )
        ]
    return [NormalisedEvent(provider=PROVIDER, type=event_type, event_id=event_id)]
